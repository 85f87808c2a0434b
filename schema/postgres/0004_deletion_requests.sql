-- Deletion (DESIGN §3.9). Every request is kept as the audit log: who asked (key), what (kind, target, filter), when,
-- how far it got. A request lists its sessions in deletion_request_sessions, so a restarted worker resumes exactly
-- where the last one stopped; the lease says which worker holds it and until when.
CREATE TABLE deletion_requests (
  id bigserial PRIMARY KEY,
  team_id bigint NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('session', 'person', 'filter')),
  -- The session id (session), the distinct_id (person), or the filter as JSON (filter).
  target jsonb NOT NULL,
  requested_by_key bigint REFERENCES personal_api_keys (id) ON DELETE SET NULL,
  requested_by text NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
  sessions_total integer,
  sessions_done integer NOT NULL DEFAULT 0,
  error text,
  lease_owner text,
  lease_until timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE INDEX deletion_requests_open ON deletion_requests (id) WHERE status IN ('pending', 'running');

CREATE TABLE deletion_request_sessions (
  request_id bigint NOT NULL REFERENCES deletion_requests (id) ON DELETE CASCADE,
  session_id text NOT NULL,
  -- The addresses of the session's blocks, kept here because its ClickHouse rows are removed before its bytes.
  block_urls text[] NOT NULL DEFAULT '{}',
  -- What its is_deleted row in ClickHouse holds (times, retention, Kafka position), kept here before its rows are
  -- removed, so a crash between the two never leaves it without that row.
  marker jsonb,
  -- Its blocks are erased (zeroed in their objects).
  done boolean NOT NULL DEFAULT false,
  PRIMARY KEY (request_id, session_id)
);

-- One row per deleted session, for good: reindex never brings one back, and a late block of it is erased too.
CREATE TABLE deleted_sessions (
  team_id bigint NOT NULL,
  session_id text NOT NULL,
  request_id bigint NOT NULL REFERENCES deletion_requests (id) ON DELETE CASCADE,
  deleted_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (team_id, session_id)
);

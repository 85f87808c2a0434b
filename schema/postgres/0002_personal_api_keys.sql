-- Personal API keys for the replay API. Only a SHA-256 of the secret is stored: the keys are 256-bit random values,
-- so a slow password hash adds nothing, and a lookup by hash stays one index probe. `prefix` (the first characters of
-- the key) lets a person recognise a key in listings without the secret.
CREATE TABLE personal_api_keys (
  id bigserial PRIMARY KEY,
  label text NOT NULL,
  prefix text NOT NULL,
  secret_sha256 bytea NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);

-- The teams a key may read; a key reads nothing else.
CREATE TABLE personal_api_key_teams (
  key_id bigint NOT NULL REFERENCES personal_api_keys (id) ON DELETE CASCADE,
  team_id bigint NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  PRIMARY KEY (key_id, team_id)
);

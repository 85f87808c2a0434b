import type { SqlDatabase, SqlExecutor } from '../postgres/database.ts';
import type { RetentionClass } from '../recordings/message-codec.ts';
import { retentionDays } from '../recordings/summary-row.ts';

export type DeletionKind = 'session' | 'person' | 'filter';
export type DeletionStatus = 'pending' | 'running' | 'done' | 'failed';

/** What a bulk delete matches; every given field must hold (DESIGN §3.9). */
export interface DeletionFilter {
  /** Sessions that started at or after this (ms since epoch). */
  readonly fromMs?: number;
  /** Sessions that started before this (ms since epoch). */
  readonly toMs?: number;
  readonly distinctId?: string;
  /** Sessions with a visited URL containing this text. */
  readonly urlContains?: string;
}

export interface DeletionRequest {
  readonly id: number;
  readonly teamId: number;
  readonly kind: DeletionKind;
  /** The session id (session), the distinct id (person) or the filter. */
  readonly target: string | DeletionFilter;
  readonly requestedBy: string;
  readonly status: DeletionStatus;
  /** Sessions the request covers; null until they are listed. */
  readonly sessionsTotal: number | null;
  readonly sessionsDone: number;
  readonly error: string | null;
  readonly createdAt: Date;
  readonly finishedAt: Date | null;
}

interface RequestRow extends Record<string, unknown> {
  id: string | number;
  team_id: string | number;
  kind: DeletionKind;
  target: string | DeletionFilter;
  requested_by: string;
  status: DeletionStatus;
  sessions_total: number | null;
  sessions_done: number;
  error: string | null;
  created_at: Date;
  finished_at: Date | null;
}

const columns =
  'id, team_id, kind, target, requested_by, status, sessions_total, sessions_done, error, created_at, finished_at';

const toRequest = (row: RequestRow): DeletionRequest => ({
  id: Number(row.id),
  teamId: Number(row.team_id),
  kind: row.kind,
  target: row.target,
  requestedBy: row.requested_by,
  status: row.status,
  sessionsTotal: row.sessions_total,
  sessionsDone: row.sessions_done,
  error: row.error,
  createdAt: row.created_at,
  finishedAt: row.finished_at,
});

/** What a deleted session's `is_deleted` row holds: enough for the TTL and the sink's resume points. */
export interface DeletedMarker {
  readonly firstTimestamp: string;
  readonly lastTimestamp: string;
  readonly retentionDays: number;
  readonly kafkaTopic: string;
  readonly kafkaPartition: number;
  readonly kafkaOffset: number;
}

export interface PendingSession {
  readonly sessionId: string;
  readonly blockUrls: readonly string[];
  readonly marker: DeletedMarker | null;
}

/** Serialises claims: one deletion runs at a time, so two never rewrite the same object at once. */
const CLAIM_LOCK = 0x7265706c; // "repl"

/**
 * Deletion requests in Postgres (`schema/postgres/0004_deletion_requests.sql`): the audit log, each request's session
 * list and progress, the lease of the worker running it, and the deleted sessions themselves.
 */
export class DeletionStore {
  private readonly db: SqlDatabase;

  constructor(db: SqlDatabase) {
    this.db = db;
  }

  async create(request: {
    readonly teamId: number;
    readonly kind: DeletionKind;
    readonly target: string | DeletionFilter;
    readonly keyId: number | null;
    readonly requestedBy: string;
    /** Held by its creator this long (it hides the sessions itself first): no worker takes it meanwhile. */
    readonly holdMs?: number;
  }): Promise<DeletionRequest> {
    const [row] = await this.db.query<RequestRow>(
      `INSERT INTO deletion_requests (team_id, kind, target, requested_by_key, requested_by, lease_owner, lease_until)
       VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7::bigint IS NULL THEN NULL
                                            ELSE clock_timestamp() + $7::bigint * interval '1 millisecond' END)
       RETURNING ${columns}`,
      [
        request.teamId,
        request.kind,
        JSON.stringify(request.target),
        request.keyId,
        request.requestedBy,
        request.holdMs === undefined ? null : 'creator',
        request.holdMs ?? null,
      ],
    );
    return toRequest(row!);
  }

  /** Hands a request its creator held (`create`'s `holdMs`) to the workers. */
  async release(id: number): Promise<void> {
    await this.db.query(
      `UPDATE deletion_requests SET lease_owner = NULL, lease_until = NULL, updated_at = now()
        WHERE id = $1 AND status = 'pending'`,
      [id],
    );
  }

  async get(teamId: number, id: number): Promise<DeletionRequest | undefined> {
    const [row] = await this.db.query<RequestRow>(
      `SELECT ${columns} FROM deletion_requests WHERE team_id = $1 AND id = $2`,
      [teamId, id],
    );
    return row ? toRequest(row) : undefined;
  }

  /**
   * Takes the oldest open request whose lease has run out (a crashed worker's included) for `leaseMs`, unless another
   * request is running under a live lease: deletions run one at a time.
   */
  async claim(owner: string, leaseMs: number): Promise<DeletionRequest | undefined> {
    return this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [CLAIM_LOCK]);
      const [row] = await tx.query<RequestRow>(
        `UPDATE deletion_requests SET status = 'running', lease_owner = $1,
           lease_until = clock_timestamp() + $2 * interval '1 millisecond', updated_at = now()
         WHERE id = (
           SELECT id FROM deletion_requests
            WHERE status IN ('pending', 'running') AND (lease_until IS NULL OR lease_until < now())
              AND NOT EXISTS (SELECT 1 FROM deletion_requests WHERE status = 'running' AND lease_until >= now())
            ORDER BY id LIMIT 1)
         RETURNING ${columns}`,
        [owner, leaseMs],
      );
      return row ? toRequest(row) : undefined;
    });
  }

  /** Extends the lease; false when the request is no longer this owner's (it then must stop). */
  async renew(id: number, owner: string, leaseMs: number): Promise<boolean> {
    const rows = await this.db.query(
      `UPDATE deletion_requests SET lease_until = now() + $3 * interval '1 millisecond', updated_at = now()
        WHERE id = $1 AND lease_owner = $2 AND status = 'running' RETURNING id`,
      [id, owner, leaseMs],
    );
    return rows.length > 0;
  }

  /**
   * Records the sessions a request covers, with the addresses of their blocks (taken before their rows are
   * removed from ClickHouse), and marks them deleted for good. Adding the same session again changes nothing.
   */
  async addSessions(
    request: DeletionRequest,
    sessions: readonly {
      readonly sessionId: string;
      readonly blockUrls: readonly string[];
      readonly marker?: DeletedMarker;
    }[],
    total?: number,
  ): Promise<void> {
    await this.db.transaction(async (tx) => {
      if (sessions.length > 0) {
        const ids = sessions.map((s) => s.sessionId);
        await tx.query(
          `INSERT INTO deletion_request_sessions (request_id, session_id)
           SELECT $1, id FROM unnest($2::text[]) AS s(id) ON CONFLICT DO NOTHING`,
          [request.id, ids],
        );
        for (const session of sessions.filter((s) => s.blockUrls.length > 0 || s.marker)) {
          await tx.query(
            `UPDATE deletion_request_sessions
                SET block_urls = ARRAY(SELECT DISTINCT unnest(block_urls || $3::text[])),
                    marker = coalesce($4::jsonb, marker)
              WHERE request_id = $1 AND session_id = $2`,
            [request.id, session.sessionId, session.blockUrls, session.marker ? JSON.stringify(session.marker) : null],
          );
        }
        await tx.query(
          `INSERT INTO deleted_sessions (team_id, session_id, request_id)
           SELECT $1, id, $2 FROM unnest($3::text[]) AS s(id) ON CONFLICT DO NOTHING`,
          [request.teamId, request.id, ids],
        );
      }
      if (total !== undefined) await setTotal(tx, request.id, total);
    });
  }

  /**
   * Up to `limit` sessions of the request not erased yet, with their block addresses, in the order of their first
   * block's address: sessions that share objects come together.
   */
  async pendingSessions(requestId: number, limit: number): Promise<PendingSession[]> {
    const rows = await this.db.query<SessionRow>(
      `SELECT session_id, block_urls, marker FROM deletion_request_sessions
        WHERE request_id = $1 AND NOT done ORDER BY block_urls[1], session_id LIMIT $2`,
      [requestId, limit],
    );
    return rows.map(toPending);
  }

  /** The listed sessions of a request among `sessionIds`, erased or not. */
  async sessionsOf(requestId: number, sessionIds: readonly string[]): Promise<PendingSession[]> {
    const rows = await this.db.query<SessionRow>(
      `SELECT session_id, block_urls, marker FROM deletion_request_sessions
        WHERE request_id = $1 AND session_id = ANY($2::text[])`,
      [requestId, sessionIds],
    );
    return rows.map(toPending);
  }

  /** The retention of the team's new recordings, in days (the `is_deleted` row of a session without rows keeps it). */
  async teamRetentionDays(teamId: number): Promise<number> {
    const [row] = await this.db.query<{ retention: RetentionClass }>(
      'SELECT session_recording_retention AS retention FROM teams WHERE id = $1',
      [teamId],
    );
    return retentionDays[row?.retention ?? '30d'];
  }

  /** Up to `limit` sessions of the request not erased yet with a block in one of these objects (addresses, no range). */
  async pendingSessionsIn(requestId: number, objects: readonly string[], limit: number): Promise<PendingSession[]> {
    if (objects.length === 0) return [];
    const rows = await this.db.query<SessionRow>(
      `SELECT session_id, block_urls, marker FROM deletion_request_sessions
        WHERE request_id = $1 AND NOT done
          AND EXISTS (SELECT 1 FROM unnest(block_urls) AS u WHERE split_part(u, '?', 1) = ANY($2::text[]))
        ORDER BY block_urls[1], session_id LIMIT $3`,
      [requestId, objects, limit],
    );
    return rows.map(toPending);
  }

  async markErased(requestId: number, sessionIds: readonly string[]): Promise<void> {
    await this.db.transaction(async (tx) => {
      const done = await tx.query(
        `UPDATE deletion_request_sessions SET done = true
          WHERE request_id = $1 AND session_id = ANY($2::text[]) AND NOT done RETURNING session_id`,
        [requestId, sessionIds],
      );
      await tx.query(
        `UPDATE deletion_requests SET sessions_done = sessions_done + $2, updated_at = now() WHERE id = $1`,
        [requestId, done.length],
      );
    });
  }

  async finish(id: number, status: 'done' | 'failed', error: string | null = null): Promise<void> {
    await this.db.query(
      `UPDATE deletion_requests SET status = $2, error = $3, lease_owner = NULL, lease_until = NULL,
         finished_at = now(), updated_at = now() WHERE id = $1`,
      [id, status, error],
    );
  }

  /** Notes a failure that will be retried (the request stays open) for whoever reads its progress. */
  async noteError(id: number, error: string): Promise<void> {
    await this.db.query('UPDATE deletion_requests SET error = $2, updated_at = now() WHERE id = $1', [id, error]);
  }

  /** Which of these sessions were deleted (reindex leaves them out). */
  async deletedAmong(teamId: number, sessionIds: readonly string[]): Promise<Set<string>> {
    if (sessionIds.length === 0) return new Set();
    const rows = await this.db.query<{ session_id: string }>(
      'SELECT session_id FROM deleted_sessions WHERE team_id = $1 AND session_id = ANY($2::text[])',
      [teamId, sessionIds],
    );
    return new Set(rows.map((row) => row.session_id));
  }
}

/** Set once: the route and a worker may both list a request; the first list is the request's. */
async function setTotal(tx: SqlExecutor, id: number, total: number): Promise<void> {
  await tx.query(
    'UPDATE deletion_requests SET sessions_total = $2, updated_at = now() WHERE id = $1 AND sessions_total IS NULL',
    [id, total],
  );
}

interface SessionRow extends Record<string, unknown> {
  session_id: string;
  block_urls: string[];
  marker: DeletedMarker | null;
}

const toPending = (row: SessionRow): PendingSession => ({
  sessionId: row.session_id,
  blockUrls: row.block_urls,
  marker: row.marker,
});

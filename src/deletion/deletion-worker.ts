import type { ClickHouseClient } from '@clickhouse/client';
import { backoffDelay, sleep } from '../consumer/backoff.ts';
import { asReplayError } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { RedisConnection } from '../uba/realtime/redis-connection.ts';
import type { DeletionFilter, DeletionRequest, DeletionStore } from './deletion-store.ts';
import { type BlockToErase, blockToErase, eraseBlocks } from './erase-blocks.ts';
import { deletePersonBehaviors } from './person-data.ts';
import { RecordingRows } from './recording-rows.ts';

export interface DeletionWorkerOptions {
  readonly deletions: DeletionStore;
  readonly clickhouse: ClickHouseClient;
  readonly blobs: BlobStore;
  /** The realtime Redis, for a person's recent items; absent: those expire on their own (REALTIME_RECENT_TTL_S). */
  readonly redis?: RedisConnection;
  readonly log: Logger;
  /** Who holds a lease (host and process), for the audit log and for a restarted worker. */
  readonly owner: string;
  /** How long a claim lasts without renewal; a crashed worker's request is taken over after it (default 30 s). */
  readonly leaseMs?: number;
  /** Sessions per batch (default 200): each batch is hidden, erased and recorded as one step. */
  readonly batchSize?: number;
  /** How often an idle worker looks for requests (default 1 s). */
  readonly pollMs?: number;
  /** Called after every batch. */
  readonly onProgress?: (request: DeletionRequest, done: number, total: number) => void;
}

/**
 * Runs deletion requests (DESIGN §3.9): lists a request's sessions once (in Postgres, so a restart resumes exactly),
 * hides them all (their ClickHouse rows become one `is_deleted` row each, their block addresses kept in Postgres),
 * then erases their blocks batch by batch from the objects they share with other sessions. Every step is idempotent, so a batch cut short by a crash is simply done
 * again by whoever takes the request over when its lease runs out.
 */
export class DeletionWorker {
  private readonly options: DeletionWorkerOptions;
  private readonly rows: RecordingRows;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(options: DeletionWorkerOptions) {
    this.options = options;
    this.rows = new RecordingRows(options.clickhouse);
  }

  private get leaseMs() {
    return this.options.leaseMs ?? 30_000;
  }

  private get batchSize() {
    return this.options.batchSize ?? 200;
  }

  /** Lists the request's sessions (once): one session, a person's, or a filter's; a person's behaviours go here too. */
  async prepare(request: DeletionRequest): Promise<void> {
    if (request.sessionsTotal !== null) return;
    const { teamId, kind, target } = request;
    const filter: DeletionFilter = kind === 'person' ? { distinctId: target as string } : (target as DeletionFilter);
    const ids = kind === 'session' ? [target as string] : await this.rows.matching(teamId, filter);
    if (kind === 'person') {
      await deletePersonBehaviors({
        clickhouse: this.options.clickhouse,
        ...(this.options.redis ? { redis: this.options.redis } : {}),
        teamId,
        distinctId: target as string,
      });
    }
    await this.options.deletions.addSessions(
      request,
      ids.map((sessionId) => ({ sessionId, blockUrls: [] })),
      ids.length,
    );
  }

  /** Hides every listed session of the request not erased yet (the API does this before it answers). */
  async hideAll(request: DeletionRequest): Promise<void> {
    const pending = await this.options.deletions.pendingSessions(request.id, Number.MAX_SAFE_INTEGER);
    for (let i = 0; i < pending.length; i += this.batchSize) {
      await this.hide(
        request,
        pending.slice(i, i + this.batchSize).map((s) => s.sessionId),
      );
    }
  }

  /** Keeps the sessions' block addresses in Postgres, then replaces their rows with `is_deleted` ones. */
  private async hide(request: DeletionRequest, sessionIds: readonly string[]): Promise<void> {
    const current = await this.rows.current(request.teamId, sessionIds);
    await this.options.deletions.addSessions(
      request,
      current.map((row) => ({ sessionId: row.session_id, blockUrls: row.block_urls })),
    );
    await this.rows.replaceWithDeletedRows(request.teamId, current);
  }

  /**
   * Erases one batch: `batchSize` sessions, grown by the pending sessions that share their objects (up to five times
   * as many), so an object is rewritten once for all of its sessions a request deletes, or once per five batches'
   * worth of them. False when nothing was left.
   */
  private async step(request: DeletionRequest): Promise<boolean> {
    const { deletions, blobs } = this.options;
    const first = await deletions.pendingSessions(request.id, this.batchSize);
    if (first.length === 0) return false;
    const objectOf = (url: string) => url.split('?')[0]!;
    const objects = new Set(first.flatMap((s) => s.blockUrls.map(objectOf)));
    const batch = new Map(first.map((s) => [s.sessionId, s]));
    for (const s of await deletions.pendingSessionsIn(request.id, [...objects], this.batchSize * 5)) {
      batch.set(s.sessionId, s);
    }
    const sessions = new Set([...batch.keys()].map((id) => `${request.teamId}:${id}`));
    const byObject = new Map<string, BlockToErase[]>();
    for (const session of batch.values()) {
      for (const url of session.blockUrls) {
        const block = blockToErase(blobs, url);
        if (!block) continue;
        const list = byObject.get(block.key);
        if (list) list.push(block);
        else byObject.set(block.key, [block]);
      }
    }
    let bytes = 0;
    for (const [key, blocks] of byObject) bytes += await eraseBlocks(blobs, key, blocks, sessions);
    await deletions.markErased(request.id, [...batch.keys()]);
    this.options.log.info('deletion batch erased', {
      request: request.id,
      sessions: batch.size,
      objects: byObject.size,
      bytes,
    });
    return true;
  }

  /** Runs a claimed request to its end, renewing the lease each batch; false if the lease was lost on the way. */
  private async run(request: DeletionRequest): Promise<boolean> {
    const { deletions, owner } = this.options;
    await this.prepare(request);
    // Every session is hidden first (its block addresses kept), so the erasure can go object by object.
    await this.hideAll((await deletions.get(request.teamId, request.id)) ?? request);
    for (;;) {
      if (this.abort.signal.aborted) return false;
      if (!(await this.step(request))) break;
      const now = await deletions.get(request.teamId, request.id);
      if (now) this.options.onProgress?.(now, now.sessionsDone, now.sessionsTotal ?? 0);
      if (!(await deletions.renew(request.id, owner, this.leaseMs))) return false;
    }
    await deletions.finish(request.id, 'done');
    this.options.log.info('deletion request done', { request: request.id, kind: request.kind });
    return true;
  }

  /** Claims and runs open requests until there are none; a failure is retried after a pause, with the lease kept. */
  async drain(): Promise<void> {
    const { deletions, owner, log } = this.options;
    for (;;) {
      if (this.abort.signal.aborted) return;
      const request = await deletions.claim(owner, this.leaseMs);
      if (!request) return;
      for (let attempt = 1; ; attempt++) {
        try {
          await this.run((await deletions.get(request.teamId, request.id)) ?? request);
          break;
        } catch (error) {
          const known = asReplayError(error);
          log.warn('deletion request failed; retrying', { request: request.id, code: known.code, attempt });
          await deletions.noteError(request.id, `${known.code}: ${known.message}`).catch(() => {});
          if (!known.retriable && known.errorClass !== 'transient') {
            await deletions.finish(request.id, 'failed', `${known.code}: ${known.message}`);
            break;
          }
          await sleep(backoffDelay(attempt, 200, 5000), this.abort.signal);
          if (this.abort.signal.aborted) return;
          if (!(await deletions.renew(request.id, owner, this.leaseMs).catch(() => false))) break;
        }
      }
    }
  }

  /** Works in the background: drains, then looks again every `pollMs`. */
  start(): void {
    this.loop ??= (async () => {
      while (!this.abort.signal.aborted) {
        await this.drain().catch((error) =>
          this.options.log.warn('deletion worker could not claim', { error: (error as Error).message }),
        );
        await sleep(this.options.pollMs ?? 1000, this.abort.signal);
      }
    })();
  }

  /** Stops after the batch in hand (bounded by one batch); an unfinished request is resumed by the next worker. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }
}

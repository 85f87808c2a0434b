import type { ClickHouseClient } from '@clickhouse/client';
import { backoffDelay, sleep } from '../consumer/backoff.ts';
import { asReplayError } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import { clickhouseTime } from '../recordings/summary-row.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { RedisConnection } from '../uba/realtime/redis-connection.ts';
import type { DeletedMarker, DeletionFilter, DeletionRequest, DeletionStore } from './deletion-store.ts';
import { type BlockToErase, blockToErase, eraseBlocks } from './erase-blocks.ts';
import { deletePersonBehaviors } from './person-data.ts';
import { markerOf, RecordingRows } from './recording-rows.ts';

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
  /**
   * Tries of a failing request before it is marked `failed` and the queue moves on (default 120: about 10 minutes of
   * backoff); a failure that can never pass fails it at once.
   */
  readonly maxAttempts?: number;
  /** Called after every batch. */
  readonly onProgress?: (request: DeletionRequest, done: number, total: number) => void;
  /** Stops the worker like `stop()` (a command's Ctrl-C). */
  readonly signal?: AbortSignal;
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
    options.signal?.addEventListener('abort', () => this.abort.abort(), { once: true });
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

  /**
   * Hides every listed session of the request not erased yet (the API does this before it answers); false when
   * `stopped` said to stop on the way.
   */
  async hideAll(request: DeletionRequest, stopped: () => boolean = () => false): Promise<boolean> {
    const pending = await this.options.deletions.pendingSessions(request.id, Number.MAX_SAFE_INTEGER);
    for (let i = 0; i < pending.length; i += this.batchSize) {
      if (stopped()) return false;
      await this.hide(
        request,
        pending.slice(i, i + this.batchSize).map((s) => s.sessionId),
      );
    }
    return true;
  }

  /**
   * Keeps the sessions' block addresses and markers in Postgres, then replaces their rows with `is_deleted` ones (a
   * session without rows, or whose rows a crash already removed, gets its marker from Postgres, or a fresh one).
   */
  private async hide(request: DeletionRequest, sessionIds: readonly string[]): Promise<void> {
    const { deletions } = this.options;
    const current = await this.rows.current(request.teamId, sessionIds);
    await deletions.addSessions(
      request,
      current.map((row) => ({ sessionId: row.session_id, blockUrls: row.block_urls, marker: markerOf(row) })),
    );
    const stored = new Map((await deletions.sessionsOf(request.id, sessionIds)).map((s) => [s.sessionId, s.marker]));
    const now = clickhouseTime(Date.now());
    const fresh: DeletedMarker = {
      firstTimestamp: now,
      lastTimestamp: now,
      retentionDays: await deletions.teamRetentionDays(request.teamId),
      kafkaTopic: '',
      kafkaPartition: -1,
      kafkaOffset: -1,
    };
    const upTo = current
      .map((row) => row.inserted_up_to)
      .sort()
      .at(-1);
    await this.rows.replaceWithDeletedRows(
      request.teamId,
      sessionIds.map((sessionId) => ({ sessionId, marker: stored.get(sessionId) ?? fresh })),
      upTo,
    );
  }

  /**
   * Erases one batch: `batchSize` sessions, grown by the pending sessions that share their objects (up to five times
   * as many), so an object is rewritten once for all of its sessions a request deletes, or once per five batches'
   * worth of them. False when nothing was left.
   */
  private async step(request: DeletionRequest, stopped: () => boolean): Promise<boolean> {
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
    let skipped = 0;
    for (const session of batch.values()) {
      for (const url of session.blockUrls) {
        const block = blockToErase(blobs, url);
        if (!block) {
          skipped++;
          continue;
        }
        const list = byObject.get(block.key);
        if (list) list.push(block);
        else byObject.set(block.key, [block]);
      }
    }
    if (skipped > 0) {
      // Addresses in another store (BLOB_STORE or the bucket changed since): this worker cannot reach them.
      await deletions.noteError(request.id, `${skipped} block(s) are not in ${blobs.description}: not erased here`);
    }
    let bytes = 0;
    for (const [key, blocks] of byObject) {
      if (stopped()) return false;
      bytes += await eraseBlocks(blobs, key, blocks, sessions);
    }
    await deletions.markErased(request.id, [...batch.keys()]);
    this.options.log.info('deletion batch erased', {
      request: request.id,
      sessions: batch.size,
      objects: byObject.size,
      bytes,
    });
    return true;
  }

  /**
   * Runs a claimed request to its end; false if it stopped early (the worker stops, or its lease was lost). The lease
   * is renewed every third of its length while the run goes on, and checked before every object rewrite: a worker
   * that lost it (a pause longer than the lease) stops before writing, so two workers never rewrite one object.
   */
  private async run(request: DeletionRequest): Promise<boolean> {
    const { deletions, owner } = this.options;
    let lost = false;
    const heartbeat = setInterval(() => {
      deletions.renew(request.id, owner, this.leaseMs).then(
        (held) => {
          if (!held) lost = true;
        },
        () => {}, // a renewal that failed is tried again on the next beat
      );
    }, this.leaseMs / 3);
    const stopped = () => lost || this.abort.signal.aborted;
    try {
      await this.prepare(request);
      // Every session is hidden first (its block addresses kept), so the erasure can go object by object.
      if (!(await this.hideAll((await deletions.get(request.teamId, request.id)) ?? request, stopped))) return false;
      for (;;) {
        if (stopped()) return false;
        if (!(await this.step(request, stopped))) break;
        const now = await deletions.get(request.teamId, request.id);
        if (now) this.options.onProgress?.(now, now.sessionsDone, now.sessionsTotal ?? 0);
      }
      if (stopped()) return false;
      await deletions.finish(request.id, 'done');
      this.options.log.info('deletion request done', { request: request.id, kind: request.kind });
      return true;
    } finally {
      clearInterval(heartbeat);
    }
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
          if (!(await this.run((await deletions.get(request.teamId, request.id)) ?? request))) return;
          break;
        } catch (error) {
          const known = asReplayError(error);
          log.warn('deletion request failed; retrying', { request: request.id, code: known.code, attempt });
          await deletions.noteError(request.id, `${known.code}: ${known.message}`).catch(() => {});
          // A failure that cannot pass, or one that did not pass in `maxAttempts` tries, fails the request and frees
          // the queue for the others; its sessions stay hidden.
          if ((!known.retriable && known.errorClass !== 'transient') || attempt >= (this.options.maxAttempts ?? 120)) {
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

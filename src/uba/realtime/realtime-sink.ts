import type Kafka from 'node-rdkafka';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { backoffDelay, sleep } from '../../consumer/backoff.ts';
import { deadLetterRecord } from '../../consumer/dead-letter.ts';
import { type ConsumerHandle, type PartitionRef, partitionKey, type Sink } from '../../consumer/sink.ts';
import { asReplayError, ReplayError } from '../../errors/index.ts';
import type { ProducedRecord } from '../../kafka/transactional-producer.ts';
import type { Logger } from '../../logging/logger.ts';
import { readBehaviorRecord } from '../behavior-record-check.ts';
import {
  APPLY_SCRIPT,
  APPLY_SCRIPT_SHA,
  type ApplyLimits,
  readScriptReply,
  type ScriptReply,
  scriptCall,
} from './apply-script.ts';
import { appliedOffsetKey, type KeyUpdate, keyUpdates, type RealtimeRules } from './keys.ts';

/** What the sink needs of Redis (RedisConnection; tests may wrap it). */
export interface RealtimeRedis {
  evalScript(
    script: string,
    sha: string,
    args: { readonly keys: string[]; readonly arguments: string[] },
    onLoad?: () => void,
  ): Promise<unknown>;
  ping(): Promise<void>;
}

export interface RealtimeSinkOptions {
  readonly redis: RealtimeRedis;
  /** Where poison messages go (acknowledged before the offsets that pass them are committed). */
  readonly deadLetters: { send(records: readonly ProducedRecord[]): Promise<void> };
  readonly dlqTopic: string;
  /** The `{group}` of the applied-offset keys `realtime:offset:{group}:{topic}:{partition}`. */
  readonly offsetGroup: string;
  readonly rules: RealtimeRules;
  readonly limits: ApplyLimits;
  /** Run the scripts at most this often... */
  readonly flushIntervalMs: number;
  /** ...or as soon as this many messages are buffered; fetching pauses at twice as many held. */
  readonly maxBufferedMessages: number;
  readonly log: Logger;
  readonly registry: Registry;
}

/** While nothing is written, Redis is pinged this often, so `/readyz` tells an idle sink's Redis is gone. */
const IDLE_PING_MS = 2000;

interface Entry {
  readonly offset: number;
  updates: readonly KeyUpdate[];
  readonly message: Kafka.Message;
}

/** What has been read from one partition and is not committed yet. */
interface PartitionWork {
  readonly ref: PartitionRef;
  readonly key: string;
  /** The partition's revocation count when this work began: work from before a revocation is never committed. */
  readonly epoch: number;
  readonly entries: Entry[];
  /** DLQ records of messages quarantined (on reading, or refused by Redis), sent before the commit. */
  readonly deadLetters: ProducedRecord[];
  messages: number;
  /** The last offset read: committing `lastOffset + 1` acknowledges every message of this work. */
  lastOffset: number;
  /** The script has run (applied or skipped everything): a retry of the batch does not run it again. */
  applied: boolean;
}

/** One flush: parts cut from the buffers, retried as they are until every step is done. */
interface Batch {
  parts: PartitionWork[];
  deadLettersSent: boolean;
}

/**
 * The realtime sink (DESIGN §3.8): behaviours from `user_behaviors` into Redis — hot items, per-minute action counts,
 * recent items per user (keys.ts) — exactly once.
 *
 * Messages are buffered per partition; a flush (every `flushIntervalMs`, or early at `maxBufferedMessages`) runs ONE
 * Lua script per partition (apply-script.ts) that applies the messages above the partition's applied offset and sets
 * it, atomically; the Kafka offsets are committed after the scripts returned (and the DLQ records were acknowledged).
 * A crash between a script and its commit replays messages the script then skips: nothing doubles, nothing is lost.
 *
 * The error contract (DESIGN §3.5.1): a message that is not JSON or not a BehaviorRecord within its bounds is poison
 * (`behavior_record_invalid`), quarantined by the framework; a message whose key Redis holds with another type is
 * quarantined as `redis_rejected` and the rest applied. Redis unreachable, timing out, or answering LOADING/BUSY/OOM is
 * transient (`redis_unavailable`): the batch is kept and retried with jittered backoff (100 ms to 5 s), `healthy()` is
 * false, new messages buffer up to twice `maxBufferedMessages`, then fetching pauses. Nothing is dropped or doubled.
 *
 * Flushes run beside the consumer loop (`tick` only starts them), one at a time, so a slow Redis never stalls the
 * polls that serve rebalances; a revocation waits for a flush in flight on its partitions (`settle`).
 */
export class RealtimeSink implements Sink {
  private readonly options: RealtimeSinkOptions;
  private readonly buffers = new Map<string, PartitionWork>();
  /** The batch being applied, or waiting to be retried. */
  private batch: Batch | undefined;
  /** The flush running now and the partitions it covers. */
  private flight: { readonly keys: ReadonlySet<string>; readonly done: Promise<boolean> } | undefined;
  /** Revocations per partition (see `PartitionWork.epoch`). */
  private readonly revocations = new Map<string, number>();
  private consumer!: ConsumerHandle;
  private lastCutAt = 0;
  private failures = 0;
  private retryAt = 0;
  /** Redis answered the last script or ping. */
  private redisAnswers = true;
  private lastAnswerAt = Date.now();
  private pinging = false;
  private readonly metrics: ReturnType<typeof createRealtimeMetrics>;

  constructor(options: RealtimeSinkOptions) {
    this.options = options;
    this.metrics = createRealtimeMetrics(options.registry, () => this.held());
  }

  async start(handle: ConsumerHandle): Promise<void> {
    this.consumer = handle;
  }

  /** Buffers one message. Never talks to Redis; throws `behavior_record_invalid` (poison) having taken nothing. */
  take(message: Kafka.Message): void {
    const record = readBehaviorRecord(message.value);
    const updates = keyUpdates(record, this.options.rules);
    this.read(message).entries.push({ offset: message.offset, updates, message });
  }

  quarantine(message: Kafka.Message, error: ReplayError): void {
    this.read(message).deadLetters.push(deadLetterRecord(this.options.dlqTopic, message, error));
    this.metrics.deadLetters.inc({ reason: error.code });
  }

  private read(message: Kafka.Message): PartitionWork {
    const key = `${message.topic}:${message.partition}`;
    let work = this.buffers.get(key);
    if (!work) {
      work = {
        ref: { topic: message.topic, partition: message.partition },
        key,
        epoch: this.revocations.get(key) ?? 0,
        entries: [],
        deadLetters: [],
        messages: 0,
        lastOffset: -1,
        applied: false,
      };
      this.buffers.set(key, work);
    }
    work.messages++;
    work.lastOffset = message.offset;
    return work;
  }

  async tick(): Promise<void> {
    if (this.flight) return;
    const now = Date.now();
    if (this.batch) {
      if (now >= this.retryAt) this.startFlush(this.batch);
      return;
    }
    if (this.buffers.size > 0) {
      const due =
        this.buffered() >= this.options.maxBufferedMessages || now - this.lastCutAt >= this.options.flushIntervalMs;
      if (due) {
        this.startFlush(this.cut());
        return;
      }
    }
    if (now - this.lastAnswerAt >= IDLE_PING_MS) this.ping();
  }

  backpressure(): boolean {
    return this.held() >= this.options.maxBufferedMessages * 2;
  }

  healthy(): boolean {
    return this.failures === 0 && this.redisAnswers;
  }

  async settle(partitions: readonly PartitionRef[]): Promise<void> {
    const flight = this.flight;
    if (flight && partitions.some((p) => flight.keys.has(partitionKey(p)))) await flight.done;
  }

  revoked(partitions: readonly PartitionRef[]): void {
    for (const ref of partitions) {
      const key = partitionKey(ref);
      this.revocations.set(key, (this.revocations.get(key) ?? 0) + 1);
      this.buffers.delete(key);
    }
    const batch = this.batch;
    if (!batch || this.flight) return; // a flight in progress drops the stale parts itself when it ends
    this.dropStale(batch);
  }

  /** Applies and commits everything held before the consumer leaves: a few attempts with backoff, then it is read again. */
  async drain(): Promise<void> {
    await this.flight?.done;
    for (let failed = 0; (this.batch || this.buffers.size > 0) && failed < 5; ) {
      const batch = this.batch ?? this.cut();
      const done = this.attempt(batch, true);
      this.flight = { keys: new Set(batch.parts.map((p) => p.key)), done };
      const ok = await done.finally(() => {
        this.flight = undefined;
      });
      if (ok) continue;
      failed++;
      await sleep(backoffDelay(failed, 100, 2000));
    }
  }

  /** Messages in the buffers. */
  private buffered(): number {
    let n = 0;
    for (const work of this.buffers.values()) n += work.messages;
    return n;
  }

  /** Messages held: buffered, and in the batch (parts still owned). */
  private held(): number {
    let n = this.buffered();
    for (const part of this.batch?.parts ?? []) if (this.current(part)) n += part.messages;
    return n;
  }

  /** True while the work's partition is owned and was not revoked since the work began. */
  private current(part: PartitionWork): boolean {
    return (this.revocations.get(part.key) ?? 0) === part.epoch && (!this.consumer || this.consumer.owns(part.ref));
  }

  private dropStale(batch: Batch): void {
    batch.parts = batch.parts.filter((part) => this.current(part));
    if (batch.parts.length === 0 && this.batch === batch) {
      // Nothing left to retry: the next flush tells whether Redis answers again.
      this.batch = undefined;
      this.failures = 0;
      this.retryAt = 0;
    }
  }

  private cut(): Batch {
    this.lastCutAt = Date.now();
    const parts = [...this.buffers.values()].filter((part) => this.current(part));
    this.buffers.clear();
    this.batch = { parts, deadLettersSent: false };
    return this.batch;
  }

  private startFlush(batch: Batch): void {
    const done = this.attempt(batch, false).finally(() => {
      this.flight = undefined;
    });
    this.flight = { keys: new Set(batch.parts.map((p) => p.key)), done };
  }

  private ping(): void {
    if (this.pinging) return;
    this.pinging = true;
    this.lastAnswerAt = Date.now(); // one ping per interval, answered or not
    void this.options.redis
      .ping()
      .then(
        () => this.answered(),
        (error) => {
          if (this.redisAnswers) this.options.log.warn('Redis does not answer', { error: String(error) });
          this.redisAnswers = false;
          this.metrics.redisErrors.inc({ code: asReplayError(error).code });
        },
      )
      .finally(() => {
        this.pinging = false;
      });
  }

  private answered(): void {
    if (!this.redisAnswers) this.options.log.info('Redis answers again');
    this.redisAnswers = true;
    this.lastAnswerAt = Date.now();
  }

  /**
   * One attempt at a batch: the scripts of the parts not yet applied, then the DLQ records, then the commit. False
   * when something failed (the batch is kept for a retry after a backoff).
   */
  private async attempt(batch: Batch, awaitCommit: boolean): Promise<boolean> {
    const started = performance.now();
    try {
      const pending = batch.parts.filter((p) => !p.applied);
      const results = await Promise.allSettled(pending.map((p) => this.apply(p)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      if (pending.length > 0) this.answered();
      const deadLetters = batch.parts.flatMap((p) => p.deadLetters);
      if (deadLetters.length > 0 && !batch.deadLettersSent) {
        await this.options.deadLetters.send(deadLetters);
        batch.deadLettersSent = true;
      }
    } catch (error) {
      const known = asReplayError(error);
      this.dropStale(batch);
      if (this.batch !== batch) return false; // every partition of it was revoked meanwhile
      if (known.errorClass === 'fatal') {
        this.consumer.fail(known);
        return false;
      }
      this.failures++;
      const delay = backoffDelay(this.failures, 100, 5000);
      this.retryAt = Date.now() + delay;
      this.options.log.warn('realtime flush failed; keeping the batch and retrying', {
        messages: batch.parts.reduce((n, p) => n + p.messages, 0),
        attempt: this.failures,
        code: known.code,
        retryInMs: Math.round(delay),
        error: known.message,
      });
      return false;
    }
    if (this.failures > 0) this.options.log.info('realtime flush succeeded again', { failedAttempts: this.failures });
    this.failures = 0;
    this.retryAt = 0;
    this.metrics.flushSeconds.observe((performance.now() - started) / 1000);
    if (this.batch === batch) this.batch = undefined;
    const offsets = batch.parts
      .filter((part) => this.current(part))
      .map((part) => ({ ...part.ref, offset: part.lastOffset + 1 }));
    // Reached only once Redis holds every update of the batch and the DLQ has its records (the crash test breaks on
    // this line). A failed commit is harmless: the next one covers these offsets, and a replay is skipped by the script.
    const committing = this.commitApplied(offsets);
    if (awaitCommit) await committing;
    return true;
  }

  private commitApplied(offsets: readonly (PartitionRef & { readonly offset: number })[]): Promise<void> {
    if (offsets.length === 0) return Promise.resolve();
    return this.consumer
      .commit(offsets)
      .catch((error) => this.options.log.warn('offset commit failed', { error: String(error) }));
  }

  /**
   * Runs the partition's script. Messages whose keys Redis holds with another type are quarantined (`redis_rejected`)
   * and the script is run again without them; nothing was written by the refused run.
   */
  private async apply(part: PartitionWork): Promise<void> {
    for (;;) {
      const messages = part.entries.filter((e) => e.updates.length > 0);
      if (messages.length === 0) {
        part.applied = true;
        return;
      }
      const call = scriptCall(
        appliedOffsetKey(this.options.offsetGroup, part.ref.topic, part.ref.partition),
        part.lastOffset,
        messages,
        this.options.limits,
      );
      let reply: ScriptReply;
      try {
        reply = readScriptReply(
          await this.options.redis.evalScript(APPLY_SCRIPT, APPLY_SCRIPT_SHA, call, () =>
            this.metrics.scriptLoads.inc(),
          ),
          call,
        );
      } catch (error) {
        this.metrics.redisErrors.inc({ code: asReplayError(error).code });
        throw error;
      }
      if (reply.status === 'ok') {
        this.metrics.scripts.inc();
        this.metrics.messagesApplied.inc(reply.applied);
        this.metrics.updatesApplied.inc(reply.updates);
        this.metrics.skipped.inc(reply.skipped);
        part.applied = true;
        return;
      }
      const conflicting = new Set(reply.keys);
      const refused = new ReplayError(
        'redis_rejected',
        `Redis holds ${[...conflicting].join(', ')} with another type than the realtime sink writes`,
      );
      for (const entry of part.entries) {
        if (!entry.updates.some((u) => conflicting.has(u.key))) continue;
        entry.updates = [];
        part.deadLetters.push(deadLetterRecord(this.options.dlqTopic, entry.message, refused));
        this.metrics.deadLetters.inc({ reason: refused.code });
        this.options.log.warn('behaviour refused by Redis; quarantined', {
          partition: entry.message.partition,
          offset: entry.offset,
          error: refused.message,
        });
      }
    }
  }
}

function createRealtimeMetrics(registry: Registry, held: () => number) {
  const registers = [registry];
  return {
    scripts: new Counter({
      name: 'realtime_scripts_total',
      help: 'Realtime scripts Redis ran to the end (one per partition per flush).',
      registers,
    }),
    scriptLoads: new Counter({
      name: 'realtime_script_loads_total',
      help: 'Times Redis did not hold the script (NOSCRIPT: first use, or a restarted Redis) and it was sent with EVAL.',
      registers,
    }),
    messagesApplied: new Counter({
      name: 'realtime_messages_applied_total',
      help: 'Behaviours whose updates Redis applied.',
      registers,
    }),
    updatesApplied: new Counter({
      name: 'realtime_updates_applied_total',
      help: 'Key updates applied (hot item scores, minute counts, recent items).',
      registers,
    }),
    skipped: new Counter({
      name: 'realtime_messages_skipped_total',
      help: 'Behaviours skipped because their partition offset was already applied (a replay after a crash or a lost reply).',
      registers,
    }),
    redisErrors: new Counter({
      name: 'realtime_redis_errors_total',
      help: 'Failed Redis calls (scripts and pings), by code; scripts are retried with backoff.',
      labelNames: ['code'],
      registers,
    }),
    deadLetters: new Counter({
      name: 'realtime_dead_letters_total',
      help: 'Messages quarantined to the DLQ, by code (behavior_record_invalid, redis_rejected, unhandled_error).',
      labelNames: ['reason'],
      registers,
    }),
    flushSeconds: new Histogram({
      name: 'realtime_flush_duration_seconds',
      help: 'Flush latency: the scripts of every partition of the batch and the DLQ records.',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    held: new Gauge({
      name: 'realtime_held_messages',
      help: 'Messages read and not yet applied (buffered, or in the batch being applied).',
      registers,
      collect() {
        this.set(held());
      },
    }),
  };
}

import type Kafka from 'node-rdkafka';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import {
  type Batch,
  BatchingSink,
  type BatchingSinkOptions,
  type PartitionWork,
} from '../../consumer/batching-sink.ts';
import { RecentKeys } from '../../consumer/recent-keys.ts';
import { partitionKey } from '../../consumer/sink.ts';
import { asReplayError, ReplayError } from '../../errors/index.ts';
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

export interface RealtimeSinkOptions extends Omit<BatchingSinkOptions, 'target' | 'gatherMs'> {
  readonly redis: RealtimeRedis;
  /** The `{group}` of the applied-offset keys `realtime:offset:{group}:{topic}:{partition}`. */
  readonly offsetGroup: string;
  readonly rules: RealtimeRules;
  readonly limits: ApplyLimits;
  readonly registry: Registry;
}

/** While nothing is written, Redis is pinged this often, so `/readyz` tells an idle sink's Redis is gone. */
const IDLE_PING_MS = 2000;

interface Entry {
  readonly offset: number;
  updates: readonly KeyUpdate[];
  readonly message: Kafka.Message;
}

/**
 * The realtime sink (DESIGN §3.8): behaviours from `user_behaviors` into Redis — hot items, per-minute action counts,
 * recent items per user (keys.ts) — exactly once.
 *
 * The framework's BatchingSink buffers per partition and flushes; a flush runs ONE Lua script per partition
 * (apply-script.ts) that applies the messages above the partition's applied offset and sets it, atomically; the Kafka
 * offsets are committed after the scripts returned (and the DLQ records were acknowledged). A crash between a script
 * and its commit replays messages the script then skips: nothing doubles, nothing is lost.
 *
 * The error contract (DESIGN §3.5.1): a message that is not JSON or not a BehaviorRecord within its bounds is poison
 * (`behavior_record_invalid`), quarantined by the framework; a message whose key Redis holds with another type is
 * quarantined as `redis_rejected` and the rest applied. Redis unreachable, timing out, or answering LOADING/BUSY/OOM is
 * transient (`redis_unavailable`): the batch is kept and retried with backoff, `healthy()` is false, and fetching
 * pauses once twice `maxBufferedMessages` are held. Nothing is dropped or doubled.
 */
export class RealtimeSink extends BatchingSink<Entry> {
  private readonly options: RealtimeSinkOptions;
  /** Redis answered the last script or ping. */
  private redisAnswers = true;
  private lastAnswerAt = Date.now();
  private pinging = false;
  private readonly metrics: ReturnType<typeof createRealtimeMetrics>;
  /** Event ids taken lately: a client's resent behaviour counts once, as ClickHouse keeps it once. */
  private readonly recentEvents = new RecentKeys();

  constructor(options: RealtimeSinkOptions) {
    // No gathering: a script per partition costs Redis little, and counters are the fresher for it.
    super({ ...options, gatherMs: 0, target: 'Redis' });
    this.options = options;
    this.metrics = createRealtimeMetrics(options.registry, () => this.held());
  }

  /** Never talks to Redis; throws `behavior_record_invalid` (poison) having taken nothing. */
  protected decode(message: Kafka.Message): Entry | undefined {
    const record = readBehaviorRecord(message.value);
    const partition = partitionKey({ topic: message.topic, partition: message.partition });
    // The behaviour sink keeps one row per tenant and event id (user_behavior_ids); Redis counts the same way.
    const key = `${record.tenant_id}/${record.event_id}`;
    if (this.recentEvents.has(partition, key)) {
      this.metrics.resent.inc();
      return undefined;
    }
    this.recentEvents.record(partition, key);
    return { offset: message.offset, updates: keyUpdates(record, this.options.rules), message };
  }

  protected override forget(keys: readonly string[]): void {
    const dropped = new Set(keys);
    this.recentEvents.forget((partition) => dropped.has(partition));
  }

  protected countDeadLetter(code: string): void {
    this.metrics.deadLetters.inc({ reason: code });
  }

  protected override targetAnswers(): boolean {
    return this.redisAnswers;
  }

  protected override idle(): void {
    if (Date.now() - this.lastAnswerAt >= IDLE_PING_MS) this.ping();
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

  /** The scripts of the parts not yet applied, side by side (one per partition). */
  protected async write(batch: Batch<Entry, undefined>): Promise<void> {
    const started = performance.now();
    const pending = batch.parts.filter((p) => !p.written);
    const results = await Promise.allSettled(pending.map((p) => this.apply(p)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    this.answered();
    this.metrics.flushSeconds.observe((performance.now() - started) / 1000);
  }

  /**
   * Runs the partition's script. Messages whose keys Redis holds with another type are quarantined (`redis_rejected`)
   * and the script is run again without them; nothing was written by the refused run.
   */
  private async apply(part: PartitionWork<Entry>): Promise<void> {
    for (;;) {
      const messages = part.entries.filter((e) => e.updates.length > 0);
      if (messages.length === 0) {
        part.written = true;
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
        part.written = true;
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
        part.deadLetters.push(this.deadLetter(entry.message, refused));
        this.options.log.warn('behaviour refused by Redis; quarantined', {
          partition: entry.message.partition,
          offset: entry.offset,
          error: refused.message,
        });
      }
    }
  }
}

/** This component's metrics (docs/metrics.md is generated from these factories). */
export function createRealtimeMetrics(registry: Registry, held: () => number) {
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
    resent: new Counter({
      name: 'realtime_messages_resent_total',
      help: 'Behaviours skipped as a copy of one taken lately (same event id: a client resending an unanswered request).',
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

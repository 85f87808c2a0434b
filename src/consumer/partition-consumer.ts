import Kafka from 'node-rdkafka';
import type { Registry } from 'prom-client';
import { asReplayError, ReplayError } from '../errors/index.ts';
import type { Logger } from '../logging/logger.ts';
import { sleep, withTimeout } from './backoff.ts';
import { createConsumerMetrics } from './consumer-metrics.ts';
import { PartitionRetries } from './partition-retries.ts';
import { type ConsumerHandle, type PartitionRef, partitionKey, type Sink } from './sink.ts';

/** librdkafka's logical offset for "the first message still stored". */
const OFFSET_BEGINNING = -2;

export interface PartitionConsumerOptions {
  readonly brokers: string;
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly clientId: string;
  readonly sink: Sink;
  readonly log: Logger;
  readonly registry: Registry;
  /** `read_committed` for topics written in transactions (default). */
  readonly isolation?: 'read_committed' | 'read_uncommitted';
  /** Most messages handed to the sink per call (default 1000). */
  readonly batchSize?: number;
  /** Longest one fetch waits for messages, and so the longest between two `tick`s (default 100 ms). */
  readonly pollTimeoutMs?: number;
  /** Longest `stop()` spends draining before it leaves the group anyway (default 30 s). */
  readonly shutdownTimeoutMs?: number;
  /** How long a silent member keeps its partitions (default 15 s). */
  readonly sessionTimeoutMs?: number;
  /** Static membership: a restart with the same id resumes its partitions without a rebalance. */
  readonly groupInstanceId?: string;
  /** Times a message is retried after an unclassified error before it is quarantined as `unhandled_error` (default 5). */
  readonly maxUnclassifiedAttempts?: number;
  /** `/readyz` turns not ready once a partition has been failing transiently for this long (default 10 s). */
  readonly unreadyAfterMs?: number;
  /** Longest a revocation waits for the sink's in-flight work on the revoked partitions (default 10 s). */
  readonly revokeTimeoutMs?: number;
}

/** Bound on every broker round trip the framework makes itself (seek, committed offsets, commit). */
const BROKER_CALL_TIMEOUT_MS = 10_000;
/** How long a commit's slot waits for librdkafka's outcome event after its caller gave up. */
const COMMIT_EVENT_WAIT_MS = 60_000;

/**
 * The consumer framework: a node-rdkafka consumer in a group with cooperative-sticky assignment and no automatic
 * commits, feeding one sink, and the error contract every sink inherits (see `Sink`): poison is quarantined, a
 * transient failure rewinds and pauses only its partition, a fatal one stops the consumer (`failed` resolves). It
 * tracks which partitions it owns, lets the sink settle in-flight work on revoked partitions before releasing them,
 * pauses fetching under backpressure, and reports lag.
 */
export class PartitionConsumer {
  private readonly consumer: Kafka.KafkaConsumer;
  private readonly owned = new Map<string, PartitionRef>();
  private readonly lastMessageTime = new Map<string, number>();
  private readonly retries: PartitionRetries;
  /** Partitions paused right now (by backpressure, a retry, or shutdown). */
  private readonly pausedNow = new Set<string>();
  private readonly options: PartitionConsumerOptions;
  private readonly metrics: ReturnType<typeof createConsumerMetrics>;
  private running = false;
  private loop: Promise<void> | undefined;
  private backpressured = false;
  private shuttingDown = false;
  private lastLoopAt = Date.now();
  private metricsPaused = 0;
  private commitChain: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | undefined;
  private fatal: ReplayError | undefined;
  private onFatal: ((error: ReplayError) => void) | undefined;
  /** Resolves with the fatal error that stopped the consumer (never resolves while it runs). */
  readonly failed: Promise<ReplayError>;

  constructor(options: PartitionConsumerOptions) {
    this.options = options;
    this.metrics = createConsumerMetrics(options.registry);
    this.retries = new PartitionRetries({ maxUnclassified: options.maxUnclassifiedAttempts ?? 5 });
    this.consumer = new Kafka.KafkaConsumer(
      {
        'metadata.broker.list': options.brokers,
        'group.id': options.groupId,
        'client.id': options.clientId,
        'partition.assignment.strategy': 'cooperative-sticky',
        'enable.auto.commit': false,
        'enable.auto.offset.store': false,
        // Commit outcomes arrive as `offset.commit` events (see `commitOffsets`).
        offset_commit_cb: true,
        'isolation.level': options.isolation ?? 'read_committed',
        // node-rdkafka's consume(n) otherwise waits for n messages as long as each arrives within the poll timeout:
        // under steady traffic one call blocked for 8-20 s (bench/end-to-end), and `tick` (flush triggers) with it.
        // With EOF events on, a call returns as soon as it has drained the local queue to a partition's end.
        'enable.partition.eof': true,
        // Without this a drained local queue waits up to 1 s before the next fetch (measured: docs/kafka-client.md).
        'fetch.queue.backoff.ms': 10,
        // Prefetch is bounded by bytes (16 MiB) and by count, so memory stays flat however small the messages are.
        'queued.max.messages.kbytes': 16384,
        'queued.min.messages': 10000,
        'socket.keepalive.enable': true,
        'session.timeout.ms': options.sessionTimeoutMs ?? 15_000,
        'heartbeat.interval.ms': Math.floor((options.sessionTimeoutMs ?? 15_000) / 5),
        ...(options.groupInstanceId ? { 'group.instance.id': options.groupInstanceId } : {}),
        rebalance_cb: (error: Kafka.LibrdKafkaError, assignment: Kafka.Assignment[]) =>
          this.onRebalance(error, assignment),
      } as Kafka.ConsumerGlobalConfig,
      { 'auto.offset.reset': 'earliest' },
    );
    this.consumer.setDefaultConsumeTimeout(options.pollTimeoutMs ?? 100);
    // librdkafka reports a fatal client error as an error event too; polls after it just return nothing.
    this.consumer.on('event.error', (error) => {
      const fatal = fatalOrAsIs(error);
      if (fatal instanceof ReplayError) this.fail(fatal);
    });
    this.failed = new Promise((resolve) => {
      this.onFatal = resolve;
    });
  }

  /** Partitions owned right now. */
  assignment(): PartitionRef[] {
    return [...this.owned.values()];
  }

  /**
   * Ready: connected, looping, the sink healthy, and no partition failing transiently for longer than
   * `unreadyAfterMs` (a dependency down is reported, not hidden behind retries).
   */
  ready(): boolean {
    const now = Date.now();
    if (this.retries.failingLongerThan(this.options.unreadyAfterMs ?? 10_000, now)) return false;
    return (
      this.running &&
      this.fatal === undefined &&
      this.consumer.isConnected() &&
      now - this.lastLoopAt < 30_000 &&
      this.options.sink.healthy()
    );
  }

  /** Stops the consumer for good: the process should exit non-zero with this error's code. */
  private fail(error: ReplayError): void {
    if (this.fatal) return;
    this.fatal = error;
    this.running = false;
    this.options.log.error('fatal error; stopping', { code: error.code, error: error.message });
    this.onFatal?.(error);
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) =>
      this.consumer.connect({ timeout: 30_000 }, (error) => (error ? reject(error) : resolve())),
    );
    await this.options.sink.start(this.handle());
    this.consumer.subscribe([...this.options.topics]);
    this.running = true;
    this.loop = this.run();
    this.options.log.info('consuming', { group: this.options.groupId, topics: this.options.topics.join(',') });
  }

  /**
   * Graceful stop: no more fetching, the sink drains (bounded), then the consumer leaves the group (a static member
   * sends no leave: the broker holds its partitions for the session timeout, so a restart finds them). The group is still
   * served while draining (see `pollWhile`): a member that joins meanwhile (a rolling deploy) gets its partitions
   * without waiting for this one to leave.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    if (this.loop === undefined) return;
    this.running = false;
    await this.loop;
    if (this.fatal) {
      // Nothing more is committed after a fatal error (a fenced producer must not write); leave the group.
      await this.disconnect();
      return;
    }
    this.shuttingDown = true;
    this.syncPauses();
    let draining = true;
    const polling = this.pollWhile(() => draining);
    const deadline = this.options.shutdownTimeoutMs ?? 30_000;
    const drained = await Promise.race([
      this.options.sink.drain().then(
        () => true,
        (error) => {
          this.options.log.error('drain failed; uncommitted work will be read again', { error: String(error) });
          return false;
        },
      ),
      sleep(deadline).then(() => false),
    ]);
    draining = false;
    await polling;
    if (!drained) this.options.log.warn('shutdown deadline passed before the sink drained');
    await this.disconnect();
  }

  /** Leaves the group, bounded: a broker that does not answer cannot hold the process. */
  private async disconnect(): Promise<void> {
    await withTimeout(
      new Promise<void>((resolve) => this.consumer.disconnect(() => resolve())),
      BROKER_CALL_TIMEOUT_MS,
      'leaving the group',
    ).catch((error) => this.options.log.warn('disconnect did not finish', { error: String(error) }));
  }

  private handle(): ConsumerHandle {
    return {
      owns: (p) => this.owned.has(partitionKey(p)),
      kafkaConsumer: this.consumer,
      commit: (offsets) => this.commitOffsets(offsets),
      committed: async (partitions) => {
        const mine = partitions.filter((p) => this.owned.has(partitionKey(p)));
        if (mine.length === 0) return [];
        return (await this.committedOffsets(mine)).map((tp) => ({
          topic: tp.topic,
          partition: tp.partition,
          offset: tp.offset >= 0 ? tp.offset : -1,
        }));
      },
      rewindToCommitted: async (partitions) => {
        const mine = partitions.filter((p) => this.owned.has(partitionKey(p)));
        if (mine.length === 0) return;
        for (const tp of await this.committedOffsets(mine)) {
          // No commit yet: back to the start of the partition (auto.offset.reset = earliest).
          await this.seek(tp, tp.offset >= 0 ? tp.offset : OFFSET_BEGINNING);
        }
      },
      fail: (error) => this.fail(error),
    };
  }

  /**
   * An asynchronous commit whose outcome is awaited, bounded: the loop never blocks on the broker (commitSync would
   * stall every partition for a round trip). librdkafka reports outcomes through one `offset.commit` event that
   * carries no request id, so commits run one at a time and each takes the next event; a caller that timed out
   * leaves its slot waiting (up to `COMMIT_EVENT_WAIT_MS`) so a late event is never matched to the next commit.
   */
  private commitOffsets(offsets: readonly (PartitionRef & { readonly offset: number })[]): Promise<void> {
    const mine = offsets.filter((o) => this.owned.has(partitionKey(o)));
    if (mine.length === 0) return Promise.resolve();
    const outcome = this.commitChain.then(
      () =>
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => {
            this.consumer.off('offset.commit', done);
            reject(new Error('no commit outcome from librdkafka'));
          }, COMMIT_EVENT_WAIT_MS);
          const done = (error: Kafka.LibrdKafkaError | undefined) => {
            clearTimeout(timer);
            this.consumer.off('offset.commit', done);
            if (error) reject(error);
            else resolve();
          };
          this.consumer.on('offset.commit', done);
          try {
            this.consumer.commit(mine.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset })));
          } catch (error) {
            done(error as Kafka.LibrdKafkaError);
          }
        }),
    );
    this.commitChain = outcome.catch(() => {});
    return withTimeout(outcome, BROKER_CALL_TIMEOUT_MS, 'offset commit').catch((error) => {
      throw new ReplayError('kafka_unavailable', `offset commit failed: ${String(error)}`, { cause: error });
    });
  }

  private async committedOffsets(partitions: readonly PartitionRef[]): Promise<Kafka.TopicPartitionOffset[]> {
    try {
      return await new Promise<Kafka.TopicPartitionOffset[]>((resolve, reject) =>
        this.consumer.committed([...partitions], BROKER_CALL_TIMEOUT_MS, (error, got) =>
          error ? reject(error) : resolve(got),
        ),
      );
    } catch (error) {
      throw new ReplayError('kafka_unavailable', `reading committed offsets failed: ${String(error)}`, {
        cause: error,
      });
    }
  }

  private async seek(partition: PartitionRef, offset: number): Promise<void> {
    try {
      await new Promise<void>((resolve, reject) =>
        this.consumer.seek(
          { topic: partition.topic, partition: partition.partition, offset },
          BROKER_CALL_TIMEOUT_MS,
          (error) => (error ? reject(error) : resolve()),
        ),
      );
    } catch (error) {
      throw new ReplayError('kafka_unavailable', `seek failed: ${String(error)}`, { cause: error });
    }
  }

  /**
   * librdkafka waits, in join state wait-assign-call / wait-unassign-call, until the application makes the matching
   * incremental call; until then the whole group waits too (a revoked partition cannot go to its new owner). So the
   * librdkafka call is always made, and `owned` only claims what librdkafka accepted. A revocation first lets the sink
   * settle work already in flight for the partitions (bounded by `revokeTimeoutMs`), so their next owner never starts
   * from offsets an in-flight transaction or insert is about to move; the loop keeps polling meanwhile. The group
   * protocol is always COOPERATIVE: cooperative-sticky is the only strategy configured, and the broker rejects a
   * member whose strategies share none with the group's, so the eager assign()/unassign() never apply.
   */
  private onRebalance(error: Kafka.LibrdKafkaError, assignment: Kafka.Assignment[]): void {
    const refs = assignment.map((a) => ({ topic: a.topic, partition: a.partition }));
    const log = this.options.log;
    if (error.code === Kafka.CODES.ERRORS.ERR__ASSIGN_PARTITIONS) {
      // An empty list is normal (this member gets nothing new this round) and must be acknowledged the same way.
      try {
        this.consumer.incrementalAssign(assignment);
      } catch (caught) {
        if (this.consumer.isConnected()) log.error('incremental assign failed', { error: String(caught) });
        return;
      }
      for (const ref of refs) this.owned.set(partitionKey(ref), ref);
      this.syncPauses();
      this.metrics.rebalances.inc({ kind: 'assign' });
      this.logRebalance('assigned', refs);
    } else if (error.code === Kafka.CODES.ERRORS.ERR__REVOKE_PARTITIONS) {
      // Revoked or lost (session expired, max.poll.interval.ms exceeded): either way the partitions are gone. They
      // leave `owned` first, so no commit can include them from here on, and no message of theirs reaches the sink.
      for (const ref of refs) {
        const key = partitionKey(ref);
        this.owned.delete(key);
        this.retries.clear(key);
        this.pausedNow.delete(key);
        this.lastMessageTime.delete(key);
        this.metrics.lagMessages.remove({ topic: ref.topic, partition: String(ref.partition) });
        this.metrics.lagSeconds.remove({ topic: ref.topic, partition: String(ref.partition) });
      }
      // While stopping, the drain has already settled (or given up on) everything: nothing is worth waiting for.
      const timeout = this.stopping ? 0 : (this.options.revokeTimeoutMs ?? 10_000);
      void withTimeout(this.options.sink.settle(refs), timeout, 'settling revoked partitions')
        .catch((caught) => log.warn('revoking before in-flight work settled', { error: String(caught) }))
        .then(() => {
          try {
            this.options.sink.revoked(refs);
          } catch (caught) {
            log.error('sink failed to forget revoked partitions', { error: String(caught) });
          }
          try {
            this.consumer.incrementalUnassign(assignment);
          } catch (caught) {
            if (this.consumer.isConnected()) log.error('incremental unassign failed', { error: String(caught) });
          }
          this.metrics.rebalances.inc({ kind: 'revoke' });
          this.logRebalance('revoked', refs);
        });
    } else {
      log.error('rebalance error', { error: error.message });
    }
  }

  private logRebalance(event: string, refs: readonly PartitionRef[]): void {
    this.options.log.info('rebalance', {
      member: this.options.clientId,
      event,
      partitions: refs.map(partitionKey).join(','),
      owned: this.owned.size,
    });
  }

  private consumeBatch(): Promise<Kafka.Message[]> {
    return new Promise((resolve, reject) =>
      this.consumer.consume(this.options.batchSize ?? 1000, (error, messages) =>
        error ? reject(fatalOrAsIs(error)) : resolve(messages),
      ),
    );
  }

  private async run(): Promise<void> {
    const sink = this.options.sink;
    while (this.running) {
      this.lastLoopAt = Date.now();
      try {
        this.backpressured = sink.backpressure();
        await this.rewindFailed();
        this.syncPauses();
        // Poll even while paused. Rebalance callbacks are served only by a poll: a paused member that stopped polling
        // held on to every partition the group was moving to a new member (6/0 for as long as the pause lasted), and
        // after max.poll.interval.ms it would be thrown out of the group. Paused partitions return nothing, so a
        // paused turn just waits the poll timeout. A message that still arrives (fetched just before a pause) goes to
        // the sink: backpressure is a budget, not a hard wall.
        const messages = await this.consumeBatch();
        if (messages.length > 0) await this.deliver(messages);
        await sink.tick();
        this.updateLag();
      } catch (error) {
        const known = asReplayError(error);
        if (known.errorClass === 'fatal') {
          this.fail(known);
          return;
        }
        // A failure outside `take` (a poll, a tick): nothing was handed over, so nothing is lost; slow down.
        this.options.log.error('consumer loop error', {
          code: known.code,
          error: (error as Error).stack ?? known.message,
        });
        await sleep(1000);
      }
    }
  }

  /**
   * Hands a batch to the sink message by message and applies the error contract. A partition whose message failed
   * transiently is rewound to it and the rest of its messages in this batch are skipped (they come again after the
   * seek); other partitions go on.
   */
  private async deliver(messages: readonly Kafka.Message[]): Promise<void> {
    const started = performance.now();
    let bytes = 0;
    let taken = 0;
    let failed = false;
    for (const message of messages) {
      const key = `${message.topic}:${message.partition}`;
      if (!this.owned.has(key)) continue;
      const retry = this.retries.get(key);
      // A partition being rewound takes nothing until its seek is done; anything before the rewind point is stale.
      if (retry && (retry.rewoundAt === undefined || message.offset < retry.offset)) continue;
      if (!this.offer(key, message)) {
        failed = true;
        continue;
      }
      if (retry) {
        this.retries.clear(key);
        this.options.log.info('partition recovered', { partition: key, attempts: retry.attempts });
      }
      taken++;
      bytes += message.size;
      this.lastMessageTime.set(key, message.timestamp ?? Date.now());
    }
    if (failed) {
      this.syncPauses();
      await this.rewindFailed();
    }
    this.metrics.messages.inc(taken);
    this.metrics.bytes.inc(bytes);
    this.metrics.batchSize.observe(messages.length);
    this.metrics.handleSeconds.observe((performance.now() - started) / 1000);
  }

  /**
   * Offers one message to the sink under the error contract. True when it was taken or quarantined; false when it
   * failed transiently (its partition is then marked for a rewind to it). Fatal errors are thrown.
   */
  private offer(key: string, message: Kafka.Message): boolean {
    const sink = this.options.sink;
    let failure: ReplayError;
    try {
      sink.take(message);
      return true;
    } catch (error) {
      failure = asReplayError(error);
    }
    if (failure.errorClass === 'fatal') throw failure;
    if (failure.errorClass === 'poison' || this.retries.exhausted(key, message.offset, failure)) {
      const reason = failure.errorClass === 'poison' ? failure : unhandled(failure);
      try {
        sink.quarantine(message, reason);
      } catch (error) {
        // Not even quarantined: the message is offered again, never dropped.
        this.noteTransient(key, message.offset, asReplayError(error));
        return false;
      }
      this.metrics.quarantined.inc({ reason: reason.code });
      this.options.log.warn('message quarantined', {
        code: reason.code,
        topic: message.topic,
        partition: message.partition,
        offset: message.offset,
        error: failure.message,
      });
      return true;
    }
    this.noteTransient(key, message.offset, failure);
    return false;
  }

  /**
   * Seeks every partition marked for a rewind back to its failed message. A seek that fails is tried again on the
   * next turn; until it succeeds the partition stays paused and takes nothing, so no message after the failed one can
   * be taken before it.
   */
  private async rewindFailed(): Promise<void> {
    for (const [key, retry] of this.retries.unrewound()) {
      const ref = this.owned.get(key);
      if (!ref) continue;
      try {
        await this.seek(ref, retry.offset);
        retry.rewoundAt = Date.now();
      } catch (error) {
        this.options.log.warn('rewind failed; trying again', { partition: key, error: String(error) });
      }
    }
  }

  /** Records a transient failure of `offset`: the partition pauses for a jittered, growing backoff. */
  private noteTransient(key: string, offset: number, error: ReplayError): void {
    const retry = this.retries.failed(key, offset, error);
    this.metrics.retries.inc({ code: error.code });
    this.options.log.warn('message failed transiently; partition paused and rewound', {
      partition: key,
      offset,
      code: error.code,
      attempt: retry.attempts,
      retryInMs: Math.max(0, retry.retryAt - Date.now()),
      error: error.message,
    });
  }

  /**
   * Pauses and resumes partitions so that exactly these are paused: all of them under backpressure or shutdown, and
   * each partition waiting out a retry backoff.
   */
  private syncPauses(): void {
    const now = Date.now();
    const pause: PartitionRef[] = [];
    const resume: PartitionRef[] = [];
    for (const [key, ref] of this.owned) {
      const wanted = this.shuttingDown || this.backpressured || this.retries.holds(key, now);
      if (wanted === this.pausedNow.has(key)) continue;
      if (wanted) {
        pause.push(ref);
        this.pausedNow.add(key);
      } else {
        resume.push(ref);
        this.pausedNow.delete(key);
      }
    }
    try {
      if (pause.length > 0) this.consumer.pause(pause);
      if (resume.length > 0) this.consumer.resume(resume);
    } catch (caught) {
      this.options.log.warn('pausing or resuming partitions failed', { error: String(caught) });
    }
    const paused = this.backpressured ? 1 : 0;
    if (paused === 1 && this.metricsPaused === 0) this.metrics.pauses.inc();
    if (paused !== this.metricsPaused) {
      this.options.log.info(paused ? 'paused: sink applies backpressure' : 'resumed');
      this.metricsPaused = paused;
      this.metrics.paused.set(paused);
    }
  }

  /**
   * Keeps polling (rebalance callbacks, group liveness) while `condition` holds, without handing anything to the
   * sink: messages still in flight are dropped, uncommitted, and read again by the partition's next owner.
   */
  private async pollWhile(condition: () => boolean): Promise<void> {
    while (condition()) {
      try {
        await this.consumeBatch();
      } catch {
        await sleep(this.options.pollTimeoutMs ?? 100);
      }
    }
  }

  /** Lag per partition from the watermarks librdkafka already has: messages behind, and how old the last one read is. */
  private updateLag(): void {
    const positions = this.owned.size > 0 ? this.consumer.position(this.assignment()) : [];
    for (const { topic, partition, offset } of positions) {
      const labels = { topic, partition: String(partition) };
      let high: number;
      try {
        high = this.consumer.getWatermarkOffsets(topic, partition).highOffset;
      } catch {
        continue;
      }
      if (high < 0 || offset < 0) continue;
      const behind = Math.max(0, high - offset);
      this.metrics.lagMessages.set(labels, behind);
      const last = this.lastMessageTime.get(`${topic}:${partition}`);
      this.metrics.lagSeconds.set(
        labels,
        behind === 0 || last === undefined ? 0 : Math.max(0, (Date.now() - last) / 1000),
      );
    }
  }
}

/** The code a message is quarantined under after repeated unclassified failures. */
function unhandled(error: ReplayError): ReplayError {
  return new ReplayError('unhandled_error', `failed repeatedly: ${error.message}`, { cause: error });
}

/**
 * A librdkafka error after which the client is dead (`isFatal`, or `ERR__FATAL` as the consume callback reports it):
 * retrying the poll would wait forever on a consumer that fetches nothing, so it becomes `kafka_client_fatal`.
 */
function fatalOrAsIs(error: Kafka.LibrdKafkaError): unknown {
  if (error.isFatal !== true && error.code !== Kafka.CODES.ERRORS.ERR__FATAL) return error;
  return new ReplayError('kafka_client_fatal', `the Kafka consumer failed for good: ${error.message}`, {
    cause: error,
  });
}

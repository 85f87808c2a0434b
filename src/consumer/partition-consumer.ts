import Kafka from 'node-rdkafka';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from '../logging/logger.ts';
import { sleep } from './backoff.ts';
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
}

/**
 * The consumer framework: a node-rdkafka consumer in a group with cooperative-sticky assignment and no automatic
 * commits, feeding one sink. It tracks which partitions it owns, tells the sink about revocations inside the
 * rebalance callback, pauses fetching while the sink applies backpressure, and reports lag.
 */
export class PartitionConsumer {
  private readonly consumer: Kafka.KafkaConsumer;
  private readonly owned = new Map<string, PartitionRef>();
  private readonly lastMessageTime = new Map<string, number>();
  private readonly options: PartitionConsumerOptions;
  private readonly metrics: ReturnType<typeof createConsumerMetrics>;
  private running = false;
  private loop: Promise<void> | undefined;
  private paused = false;
  private lastLoopAt = Date.now();

  constructor(options: PartitionConsumerOptions) {
    this.options = options;
    this.metrics = createConsumerMetrics(options.registry);
    this.consumer = new Kafka.KafkaConsumer(
      {
        'metadata.broker.list': options.brokers,
        'group.id': options.groupId,
        'client.id': options.clientId,
        'partition.assignment.strategy': 'cooperative-sticky',
        'enable.auto.commit': false,
        'enable.auto.offset.store': false,
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
  }

  /** Partitions owned right now. */
  assignment(): PartitionRef[] {
    return [...this.owned.values()];
  }

  /** Alive: the loop has turned recently. Ready: connected, looping and the sink healthy. */
  ready(): boolean {
    return (
      this.running &&
      this.consumer.isConnected() &&
      Date.now() - this.lastLoopAt < 30_000 &&
      this.options.sink.healthy()
    );
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
   * Graceful stop: no more fetching, the sink drains (bounded), then the consumer leaves the group. The group is still
   * served while draining (see `pollWhile`): a member that joins meanwhile (a rolling deploy) gets its partitions
   * without waiting for this one to leave.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.loop;
    this.pauseForShutdown();
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
    await new Promise<void>((resolve) => this.consumer.disconnect(() => resolve()));
  }

  private handle(): ConsumerHandle {
    return {
      owns: (p) => this.owned.has(partitionKey(p)),
      kafkaConsumer: this.consumer,
      commit: async (offsets) => {
        const mine = offsets.filter((o) => this.owned.has(partitionKey(o)));
        if (mine.length === 0) return;
        this.consumer.commitSync(mine.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset })));
      },
      rewindToCommitted: async (partitions) => {
        const mine = partitions.filter((p) => this.owned.has(partitionKey(p)));
        if (mine.length === 0) return;
        const committed = await new Promise<Kafka.TopicPartitionOffset[]>((resolve, reject) =>
          this.consumer.committed(mine, 10_000, (error, got) => (error ? reject(error) : resolve(got))),
        );
        for (const tp of committed) {
          // No commit yet: back to the start of the partition (auto.offset.reset = earliest).
          const offset = tp.offset >= 0 ? tp.offset : OFFSET_BEGINNING;
          await new Promise<void>((resolve, reject) =>
            this.consumer.seek({ topic: tp.topic, partition: tp.partition, offset }, 10_000, (error) =>
              error ? reject(error) : resolve(),
            ),
          );
        }
      },
    };
  }

  /**
   * librdkafka waits, in join state wait-assign-call / wait-unassign-call, until the application makes the matching
   * incremental call; until then the whole group waits too (a revoked partition cannot go to its new owner). So the
   * librdkafka call is made whatever the sink does, and `owned` only claims what librdkafka accepted. The group
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
      try {
        if (this.paused && refs.length > 0) this.consumer.pause(refs);
      } catch (caught) {
        log.error('pausing new partitions failed', { error: String(caught) });
      }
      this.metrics.rebalances.inc({ kind: 'assign' });
    } else if (error.code === Kafka.CODES.ERRORS.ERR__REVOKE_PARTITIONS) {
      // Revoked or lost (session expired, max.poll.interval.ms exceeded): either way the partitions are gone. They
      // leave `owned` first, so no commit can include them from here on.
      for (const ref of refs) {
        this.owned.delete(partitionKey(ref));
        this.lastMessageTime.delete(partitionKey(ref));
        this.metrics.lagMessages.remove({ topic: ref.topic, partition: String(ref.partition) });
        this.metrics.lagSeconds.remove({ topic: ref.topic, partition: String(ref.partition) });
      }
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
    } else {
      log.error('rebalance error', { error: error.message });
      return;
    }
    log.info('rebalance', {
      member: this.options.clientId,
      event: error.code === Kafka.CODES.ERRORS.ERR__ASSIGN_PARTITIONS ? 'assigned' : 'revoked',
      partitions: refs.map(partitionKey).join(','),
      owned: this.owned.size,
    });
  }

  private consumeBatch(): Promise<Kafka.Message[]> {
    return new Promise((resolve, reject) =>
      this.consumer.consume(this.options.batchSize ?? 1000, (error, messages) =>
        error ? reject(error) : resolve(messages),
      ),
    );
  }

  private async run(): Promise<void> {
    const sink = this.options.sink;
    while (this.running) {
      this.lastLoopAt = Date.now();
      try {
        this.applyBackpressure(sink.backpressure());
        // Poll even while paused. Rebalance callbacks are served only by a poll: a paused member that stopped polling
        // held on to every partition the group was moving to a new member (6/0 for as long as the pause lasted), and
        // after max.poll.interval.ms it would be thrown out of the group. Paused partitions return nothing, so a
        // paused turn just waits the poll timeout. A message that still arrives (fetched just before a pause) goes to
        // the sink: backpressure is a budget, not a hard wall.
        const messages = await this.consumeBatch();
        if (messages.length > 0) {
          const started = performance.now();
          let bytes = 0;
          for (const message of messages) {
            bytes += message.size;
            this.lastMessageTime.set(`${message.topic}:${message.partition}`, message.timestamp ?? Date.now());
          }
          await sink.handle(messages);
          this.metrics.messages.inc(messages.length);
          this.metrics.bytes.inc(bytes);
          this.metrics.batchSize.observe(messages.length);
          this.metrics.handleSeconds.observe((performance.now() - started) / 1000);
        }
        await sink.tick();
        this.updateLag();
      } catch (error) {
        // A sink error here is a bug or an unexpected downstream failure: keep the process alive, log, slow down.
        this.options.log.error('consumer loop error', { error: (error as Error).stack ?? String(error) });
        await sleep(1000);
      }
    }
  }

  /** Shutdown: fetch nothing more, including partitions assigned from now on. */
  private pauseForShutdown(): void {
    const refs = this.assignment();
    try {
      if (refs.length > 0) this.consumer.pause(refs);
    } catch (caught) {
      this.options.log.warn('pausing for shutdown failed', { error: String(caught) });
    }
    this.paused = true;
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

  private applyBackpressure(wanted: boolean): void {
    if (wanted === this.paused) return;
    const refs = this.assignment();
    if (wanted) this.consumer.pause(refs);
    else this.consumer.resume(refs);
    this.paused = wanted;
    this.metrics.paused.set(wanted ? 1 : 0);
    if (wanted) this.metrics.pauses.inc();
    this.options.log.info(wanted ? 'paused: sink applies backpressure' : 'resumed');
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

function createConsumerMetrics(registry: Registry) {
  const registers = [registry];
  return {
    messages: new Counter({ name: 'consumer_messages_total', help: 'Messages consumed.', registers }),
    bytes: new Counter({ name: 'consumer_bytes_total', help: 'Message bytes consumed (values).', registers }),
    batchSize: new Histogram({
      name: 'consumer_batch_messages',
      help: 'Messages per batch handed to the sink.',
      buckets: [1, 10, 50, 100, 250, 500, 1000, 5000],
      registers,
    }),
    handleSeconds: new Histogram({
      name: 'consumer_sink_handle_seconds',
      help: 'Time the sink took to take one batch.',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    }),
    lagMessages: new Gauge({
      name: 'consumer_lag_messages',
      help: 'Messages between the consumer position and the end of the partition (0 when caught up).',
      labelNames: ['topic', 'partition'],
      registers,
    }),
    lagSeconds: new Gauge({
      name: 'consumer_lag_seconds',
      help: 'Age of the last message read on a partition that is behind (0 when caught up).',
      labelNames: ['topic', 'partition'],
      registers,
    }),
    paused: new Gauge({ name: 'consumer_paused', help: '1 while fetching is paused by backpressure.', registers }),
    pauses: new Counter({
      name: 'consumer_pauses_total',
      help: 'Times fetching was paused by backpressure.',
      registers,
    }),
    rebalances: new Counter({
      name: 'consumer_rebalances_total',
      help: 'Partition assignments and revocations.',
      labelNames: ['kind'],
      registers,
    }),
  };
}

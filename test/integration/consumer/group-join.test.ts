import { randomUUID } from 'node:crypto';
import type Kafka from 'node-rdkafka';
import { Registry } from 'prom-client';
import { describe, expect, inject, it, onTestFailed, onTestFinished } from 'vitest';
import { PartitionConsumer } from '../../../src/consumer/partition-consumer.ts';
import { type ConsumerHandle, type PartitionRef, partitionKey, type Sink } from '../../../src/consumer/sink.ts';
import type { ReplayError } from '../../../src/errors/index.ts';
import { ensureTopics } from '../../../src/kafka/admin.ts';
import { createLogger } from '../../../src/logging/logger.ts';
import {
  expectExactlyOnce,
  freshBucketStore,
  sessionMessages,
  startTestBlobConsumer,
  testTeam,
  waitForTeamRows,
} from '../../support/blob-consumer.ts';
import { syntheticSession } from '../../support/expected-summary.ts';
import { produceAll } from '../../support/kafka.ts';

// Several replicas joining one group at once (a Kubernetes rollout): within a bounded time every partition has
// exactly one owner and no member is left idle. Cooperative-sticky converges in two rounds, each bounded by a
// heartbeat interval (3 s here), so 30 s leaves room for a loaded 2-core machine.

const brokers = inject('stack').kafka!.brokers;
const PARTITIONS = 6;
const SETTLE_MS = 30_000;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Member {
  assignment(): PartitionRef[];
}

/** Ownership seen from the members: every partition owned exactly once, every member owning a fair share. */
function ownership(members: readonly Member[]) {
  const counts = members.map((m) => m.assignment().length);
  const owners = new Map<number, number>();
  for (const m of members) for (const p of m.assignment()) owners.set(p.partition, (owners.get(p.partition) ?? 0) + 1);
  const exclusive = owners.size === PARTITIONS && [...owners.values()].every((n) => n === 1);
  const fair = Math.max(...counts) - Math.min(...counts) <= 1 && Math.min(...counts) > 0;
  return { counts: counts.join('/'), settled: exclusive && fair };
}

/** Waits until ownership settles; returns how the member counts changed, for the failure message. */
async function waitForSettled(members: readonly Member[]) {
  const started = Date.now();
  const history: string[] = [];
  let last = '';
  for (;;) {
    const now = ownership(members);
    if (now.counts !== last) history.push(`${((Date.now() - started) / 1000).toFixed(1)}s:${now.counts}`);
    last = now.counts;
    if (now.settled || Date.now() - started > SETTLE_MS) {
      if (process.env.TEST_LOG_LEVEL) process.stderr.write(`group ownership: ${history.join(' ')}\n`);
      return { settled: now.settled, ms: Date.now() - started, history: history.join(' ') };
    }
    await pause(250);
  }
}

describe('members joining a consumer group', () => {
  it('three blob consumers started together share the partitions, and every event is committed exactly once', async () => {
    const topic = `recordings-join-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS, config: {} }]);
    const store = await freshBucketStore();
    const team = testTeam(950_000 + Math.floor(Math.random() * 10_000));
    const base = Date.UTC(2026, 10, 21, 12, 0, 0);
    const sessions = Array.from({ length: 24 }, (_, i) => ({
      sessionId: randomUUID(),
      events: syntheticSession(900 + i, base + i * 7000, 40),
    }));
    const part = (k: 0 | 1) =>
      sessions.flatMap((s) =>
        sessionMessages(topic, team, s.sessionId, k === 0 ? s.events.slice(0, 21) : s.events.slice(21), 2),
      );
    await produceAll(brokers, part(0));

    const groupId = `group-${randomUUID()}`;
    const members = await Promise.all([0, 1, 2].map(() => startTestBlobConsumer({ brokers, topic, store, groupId })));
    onTestFailed(async () => {
      await Promise.all(members.map((m) => m.stop()));
    });
    const consumers = members.map((m) => m.consumer);
    const result = await waitForSettled(consumers);
    expect(result.settled, `assignments over time: ${result.history}`).toBe(true);

    await produceAll(brokers, part(1));
    const rows = await waitForTeamRows(
      brokers,
      team.id,
      sessions.reduce((n, s) => n + s.events.length, 0),
    );
    // No rebalance happened while the data was read: ownership is still as settled.
    expect(ownership(consumers).settled).toBe(true);
    await Promise.all(members.map((m) => m.stop()));
    await expectExactlyOnce(store, rows, sessions, expect);
  });

  it('a member under backpressure still hands partitions over to members that join', async () => {
    const topic = `consumer-join-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS, config: {} }]);
    const groupId = `group-${randomUUID()}`;
    const start = async (name: string) => {
      const sink = new RecordingSink();
      const registry = new Registry();
      const consumer = new PartitionConsumer({
        brokers,
        groupId,
        topics: [topic],
        clientId: `${name}-${randomUUID().slice(0, 8)}`,
        sink,
        log: createLogger((process.env.TEST_LOG_LEVEL as 'info') ?? 'warn', name),
        registry,
      });
      await consumer.start();
      onTestFinished(() => consumer.stop());
      return { name, sink, consumer, registry, assignment: () => consumer.assignment() };
    };

    const first = await start('first');
    for (let i = 0; i < 120 && first.assignment().length < PARTITIONS; i++) await pause(250);
    expect(first.assignment().length).toBe(PARTITIONS);
    // The sink is full (a slow flush, an S3 outage): the framework pauses every partition.
    first.sink.hold = true;
    const paused = async () => (await first.registry.getSingleMetric('consumer_paused')?.get())?.values[0]?.value;
    for (let i = 0; i < 40 && (await paused()) !== 1; i++) await pause(250);
    expect(await paused()).toBe(1);

    const joiners = await Promise.all([start('second'), start('third')]);
    const members = [first, ...joiners];
    const result = await waitForSettled(members);
    expect(result.settled, `assignments over time: ${result.history}`).toBe(true);
    // The handover happened while the first member was still paused.
    expect(await paused()).toBe(1);
    expect(first.sink.revokedCount).toBeGreaterThan(0);

    first.sink.hold = false;
    const total = 600;
    await produceAll(
      brokers,
      Array.from({ length: total }, (_, i) => ({
        topic,
        key: `k${i}`,
        value: Buffer.from(`m${i}`),
        partition: i % PARTITIONS,
      })),
    );
    const seen = () => members.reduce((n, m) => n + m.sink.seen.length, 0);
    for (let i = 0; i < 240 && seen() < total; i++) await pause(250);
    await pause(500);
    await Promise.all(members.map((m) => m.consumer.stop()));

    // Exactly once across the group, each message read by the member owning its partition.
    const all = members.flatMap((m) => m.sink.seen);
    expect(all.length).toBe(total);
    expect(new Set(all.map((s) => `${s.partition}@${s.offset}`)).size).toBe(total);
    expect(new Set(all.map((s) => s.value)).size).toBe(total);
    for (const m of members) {
      const mine = new Set(m.sink.seenPartitions());
      expect(mine.size, m.name).toBeGreaterThan(0);
      for (const other of members) {
        if (other === m) continue;
        for (const p of other.sink.seenPartitions()) expect(mine.has(p), `${m.name} and ${other.name}`).toBe(false);
      }
    }
  });
});

/** Records what it reads and commits it at once; `hold` applies backpressure. */
class RecordingSink implements Sink {
  hold = false;
  revokedCount = 0;
  readonly seen: { partition: number; offset: number; value: string }[] = [];
  private readonly next = new Map<string, { topic: string; partition: number; offset: number }>();
  private consumer!: ConsumerHandle;

  async start(handle: ConsumerHandle): Promise<void> {
    this.consumer = handle;
  }

  take(m: Kafka.Message): void {
    this.seen.push({ partition: m.partition, offset: m.offset, value: m.value?.toString() ?? '' });
    this.next.set(partitionKey(m), { topic: m.topic, partition: m.partition, offset: m.offset + 1 });
  }

  quarantine(_message: Kafka.Message, error: ReplayError): void {
    throw error; // every message of this test is valid
  }

  /** Commits what was taken since the last turn (not awaited: the outcome arrives with the next polls). */
  async tick(): Promise<void> {
    if (this.next.size === 0) return;
    const offsets = [...this.next.values()];
    this.next.clear();
    void this.consumer.commit(offsets).catch(() => {});
  }

  async settle(): Promise<void> {}

  backpressure(): boolean {
    return this.hold;
  }

  revoked(partitions: readonly PartitionRef[]): void {
    this.revokedCount += partitions.length;
  }

  async drain(): Promise<void> {}

  healthy(): boolean {
    return true;
  }

  seenPartitions(): number[] {
    return [...new Set(this.seen.map((s) => s.partition))];
  }
}

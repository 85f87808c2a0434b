import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import { ensureTopics } from '../../../src/kafka/admin.ts';
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
import { END_TXN, startKafkaFaultProxy } from '../../support/kafka-fault-proxy.ts';
import { metricValue, scrape } from '../../support/metrics.ts';

const stack = inject('stack');
const brokers = stack.kafka!.brokers;

describe('a transaction commit whose answer is lost (real broker, a proxy that drops the EndTxn replies)', () => {
  it('is resolved before anything is sent again: every summary row is stored exactly once', async () => {
    const proxied = stack.kafka!.proxied;
    const proxy = await startKafkaFaultProxy(proxied.brokers, proxied.upstream);
    const topic = `recordings-lost-commit-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: 2, config: {} }]);
    const store = await freshBucketStore();
    const team = testTeam(970_000 + Math.floor(Math.random() * 10_000));
    const base = Date.UTC(2026, 10, 26, 9, 0, 0);
    const sessions = Array.from({ length: 10 }, (_, i) => ({
      sessionId: randomUUID(),
      events: syntheticSession(3000 + i, base + i * 8000, 60),
    }));
    // The consumer talks to Kafka only through the proxy; each commit waits at most 1.5 s for its answer.
    const running = await startTestBlobConsumer({
      brokers: proxied.brokers,
      topic,
      store,
      env: { BLOB_COMMIT_TIMEOUT_MS: '1500', BLOB_FLUSH_INTERVAL_MS: '500' },
    });
    try {
      // First wave: every commit's answer is lost for longer than the commit retries last, so the producer is
      // rebuilt and the flush's outcome must be read back from the group's committed offsets.
      proxy.loseAnswers(END_TXN, 12_000);
      await produceAll(
        brokers,
        sessions.slice(0, 5).flatMap((s) => sessionMessages(topic, team, s.sessionId, s.events, 3)),
      );
      // Second wave after the answers come through again: the consumer goes on from where the first wave ended.
      await new Promise((resolve) => setTimeout(resolve, 13_000));
      await produceAll(
        brokers,
        sessions.slice(5).flatMap((s) => sessionMessages(topic, team, s.sessionId, s.events, 3)),
      );
      const rows = await waitForTeamRows(
        brokers,
        team.id,
        sessions.reduce((n, s) => n + s.events.length, 0),
      );
      expect(proxy.lost).toBeGreaterThan(0);
      const metrics = await scrape(running.http.url);
      expect(metricValue(metrics, 'blob_commit_errors_total')).toBeGreaterThan(0);
      // The flush whose answers were lost had committed; it was read back, not sent a second time.
      expect(metricValue(metrics, 'blob_commit_outcomes_resolved_total', { outcome: 'committed' })).toBeGreaterThan(0);
      await expectExactlyOnce(store, rows, sessions, expect);
      expect((await fetch(`${running.http.url}/readyz`)).status).toBe(200);
    } finally {
      await running.stop();
      await proxy.close();
    }
  });
});

import { randomUUID } from 'node:crypto';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { describe, expect, inject, it } from 'vitest';
import { startS3FaultProxy } from '../../../src/harness/s3-fault-proxy.ts';
import { ensureTopics } from '../../../src/kafka/admin.ts';
import {
  expectExactlyOnce,
  freshBucketStore,
  sessionMessages,
  startTestBlobConsumer,
  storeVia,
  testTeam,
  waitForTeamRows,
} from '../../support/blob-consumer.ts';
import { syntheticSession } from '../../support/expected-summary.ts';
import { produceAll } from '../../support/kafka.ts';

const stack = inject('stack');
const brokers = stack.kafka!.brokers;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function makeSessions(seed: number, count: number) {
  const base = Date.UTC(2026, 10, 21, 12, 0, 0);
  return Array.from({ length: count }, (_, i) => ({
    sessionId: randomUUID(),
    events: syntheticSession(seed + i, base + i * 7000, 60),
  }));
}

describe('blob consumer group membership changes', () => {
  it('two consumers, one joining mid-stream and one leaving: every message ends in exactly one committed block', async () => {
    const topic = `recordings-group-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: 6, config: {} }]);
    const store = await freshBucketStore();
    const team = testTeam(930_000 + Math.floor(Math.random() * 10_000));
    const sessions = makeSessions(500, 30);
    const third = (k: number) =>
      sessions.flatMap((s) => sessionMessages(topic, team, s.sessionId, s.events.slice(k * 21, (k + 1) * 21), 2));
    const groupId = `group-${randomUUID()}`;

    await produceAll(brokers, third(0));
    const first = await startTestBlobConsumer({ brokers, topic, store, groupId });
    for (let i = 0; i < 60 && first.consumer.assignment().length < 6; i++) await pause(500);
    expect(first.consumer.assignment().length).toBe(6);
    await pause(1500);
    const second = await startTestBlobConsumer({ brokers, topic, store, groupId });
    await produceAll(brokers, third(1));
    // Cooperative rebalancing takes two rounds (revoke from the first, then assign to the second).
    const shared = async () => {
      for (
        let i = 0;
        i < 60 &&
        (second.consumer.assignment().length === 0 ||
          first.consumer.assignment().length + second.consumer.assignment().length !== 6);
        i++
      )
        await pause(500);
    };
    await shared();
    expect(first.consumer.assignment().length + second.consumer.assignment().length).toBe(6);
    expect(second.consumer.assignment().length).toBeGreaterThan(0);
    await first.stop();
    await produceAll(brokers, third(2));

    const rows = await waitForTeamRows(
      brokers,
      team.id,
      sessions.reduce((n, s) => n + s.events.length, 0),
    );
    expect(second.consumer.assignment().length).toBe(6);
    await second.stop();
    await expectExactlyOnce(store, rows, sessions, expect);
  });
});

describe('blob consumer during an S3 outage', () => {
  it('retries, reports not ready, catches up when S3 returns, and loses nothing', async () => {
    const topic = `recordings-s3-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: 2, config: {} }]);
    const proxy = await startS3FaultProxy(stack.minio!.endpoint);
    const direct = await freshBucketStore();
    const throughProxy = storeVia(direct, proxy.endpoint);
    await direct.client.send(new CreateBucketCommand({ Bucket: `${direct.bucket}-unused` }));
    const team = testTeam(940_000 + Math.floor(Math.random() * 10_000));
    const sessions = makeSessions(700, 12);

    proxy.setFailing(true);
    const running = await startTestBlobConsumer({ brokers, topic, store: throughProxy });
    await produceAll(
      brokers,
      sessions.flatMap((s) => sessionMessages(topic, team, s.sessionId, s.events, 3)),
    );
    await pause(5000);
    expect(proxy.failedRequests).toBeGreaterThan(0);
    const readiness = await fetch(`${running.http.url}/readyz`);
    expect(readiness.status).toBe(503);
    const metrics = await (await fetch(`${running.http.url}/metrics`)).text();
    expect(metrics.split('\n').find((line) => line.startsWith('blob_upload_errors_total'))).toMatch(/ [1-9]\d*$/);

    proxy.setFailing(false);
    const rows = await waitForTeamRows(
      brokers,
      team.id,
      sessions.reduce((n, s) => n + s.events.length, 0),
    );
    expect((await fetch(`${running.http.url}/readyz`)).status).toBe(200);
    await running.stop();
    await proxy.close();
    await expectExactlyOnce(direct, rows, sessions, expect);
  });
});

describe('blob consumer against a black-holed S3 endpoint (accepts, never answers)', () => {
  it('times the upload out, reports not ready, recovers when S3 answers again, and loses nothing', async () => {
    const topic = `recordings-blackhole-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: 2, config: {} }]);
    const proxy = await startS3FaultProxy(stack.minio!.endpoint);
    const direct = await freshBucketStore();
    const throughProxy = storeVia(direct, proxy.endpoint, { requestTimeoutMs: 1500 });
    const team = testTeam(945_000 + Math.floor(Math.random() * 5_000));
    const sessions = makeSessions(800, 10);

    proxy.setBlackhole(true);
    const running = await startTestBlobConsumer({
      brokers,
      topic,
      store: throughProxy,
      env: { BLOB_FLUSH_DEADLINE_MS: '2000' },
    });
    try {
      await produceAll(
        brokers,
        sessions.flatMap((s) => sessionMessages(topic, team, s.sessionId, s.events, 2)),
      );
      // Every upload hangs until its request timeout: the flush goes past its deadline and readiness says so.
      for (let i = 0; i < 60 && (await fetch(`${running.http.url}/readyz`)).status !== 503; i++) await pause(250);
      expect((await fetch(`${running.http.url}/readyz`)).status).toBe(503);
      await pause(2000);
      expect(proxy.swallowedRequests).toBeGreaterThan(0);
      const metrics = await (await fetch(`${running.http.url}/metrics`)).text();
      expect(metrics.split('\n').find((line) => line.startsWith('blob_upload_errors_total'))).toMatch(/ [1-9]\d*$/);

      proxy.setBlackhole(false);
      const rows = await waitForTeamRows(
        brokers,
        team.id,
        sessions.reduce((n, s) => n + s.events.length, 0),
      );
      expect((await fetch(`${running.http.url}/readyz`)).status).toBe(200);
      await expectExactlyOnce(direct, rows, sessions, expect);
    } finally {
      await running.stop();
      await proxy.close();
    }
  });
});

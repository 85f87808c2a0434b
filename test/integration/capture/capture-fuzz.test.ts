import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { topicNames } from '../../../src/kafka/topics.ts';
import { postRaw, sampleRrwebEvents, snapshotBody, startTestCapture, type TestCapture } from '../../support/capture.ts';
import { headerOf, readTopic } from '../../support/kafka.ts';

const stack = inject('stack');

describe('capture under mutated requests (real server, real Kafka)', () => {
  let capture: TestCapture;
  beforeAll(async () => {
    capture = await startTestCapture({ brokers: stack.kafka!.brokers, databaseUrl: stack.postgres!.url });
  });
  afterAll(() => capture?.stop());

  it('answers every request with 200 or a 4xx catalogue error, and Kafka holds messages only for the 200s', async () => {
    const team = await capture.createTeam();
    const rng = fc.sample(
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 0, maxLength: 4 }),
      {
        numRuns: 200,
        seed: 20261122,
      },
    );
    let accepted = 0;
    const statuses = new Map<number, number>();
    for (const edits of rng) {
      const body = gzipSync(JSON.stringify(snapshotBody(team.apiToken, randomUUID(), sampleRrwebEvents())));
      for (const [at, value] of edits) body[at % body.length] = value;
      const answer = await postRaw(`${capture.url}/s/`, body, { 'content-type': 'text/plain' });
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      if (answer.status === 200) accepted++;
      else {
        expect([400, 401, 413, 415]).toContain(answer.status);
        expect(answer.body.code).toEqual(expect.any(String));
      }
    }
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(200);
    const health = await fetch(`${capture.url}/healthz`);
    expect(health.status).toBe(200);

    const teamId = String(team.id);
    const messages = await readTopic(stack.kafka!.brokers, topicNames.recordings, {
      done: (got) => got.filter((m) => headerOf(m, 'team_id') === teamId).length >= accepted,
      timeoutMs: 30_000,
    });
    // Each accepted request is one small session: exactly one message each, and nothing for the rejected ones.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const again = await readTopic(stack.kafka!.brokers, topicNames.recordings, { idleMs: 2000 });
    expect(messages.filter((m) => headerOf(m, 'team_id') === teamId)).toHaveLength(accepted);
    expect(again.filter((m) => headerOf(m, 'team_id') === teamId)).toHaveLength(accepted);
  });
});

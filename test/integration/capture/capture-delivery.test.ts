import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { decompressLz4Frames } from '../../../src/codec/lz4-frames.ts';
import { loadConfig } from '../../../src/config/index.ts';
import { type LocalKafka, startLocalKafka } from '../../../src/harness/kafka.ts';
import { ensureTopics } from '../../../src/kafka/admin.ts';
import { pipelineTopics, topicNames } from '../../../src/kafka/topics.ts';
import { decodeRecordingMessage } from '../../../src/recordings/message-codec.ts';
import { postRaw, sampleRrwebEvents, snapshotBody, startTestCapture, type TestCapture } from '../../support/capture.ts';
import { headerOf, readTopic } from '../../support/kafka.ts';

const stack = inject('stack');
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const forSession = (id: string) => (m: { headers?: unknown }) => headerOf(m as never, 'session_id') === id;

describe('capture splits big requests', () => {
  let capture: TestCapture;

  beforeAll(async () => {
    capture = await startTestCapture({
      brokers: stack.kafka!.brokers,
      databaseUrl: stack.postgres!.url,
      env: { KAFKA_MAX_MESSAGE_BYTES: String(1024 * 1024) },
    });
  });
  afterAll(() => capture?.stop());

  it('splits a request bigger than the message limit at event boundaries, in order, all parts committed', async () => {
    const team = await capture.createTeam();
    const sessionId = randomUUID();
    // ~3.6 MB of incompressible events against a 1 MiB message limit.
    const events = Array.from({ length: 60 }, (_, i) => ({
      type: 3,
      timestamp: 1_763_800_000_000 + i,
      data: { source: 0, adds: [{ text: randomBytes(45_000).toString('base64') }] },
    }));
    const answer = await postRaw(`${capture.url}/s/`, gzipSync(json(snapshotBody(team.apiToken, sessionId, events))));
    expect(answer.status).toBe(200);

    const messages = await readTopic(stack.kafka!.brokers, topicNames.recordings, {
      done: (got) =>
        got.filter(forSession(sessionId)).length > 0 &&
        got.filter(forSession(sessionId)).length ===
          decodeRecordingMessage(got.filter(forSession(sessionId))[0]!.value!).header.parts,
    });
    const mine = messages.filter(forSession(sessionId)).map((m) => decodeRecordingMessage(m.value!));
    expect(mine.length).toBeGreaterThanOrEqual(4);
    mine.forEach((m, i) => {
      expect(m.header.part).toBe(i);
      expect(m.header.parts).toBe(mine.length);
    });
    for (const m of messages.filter(forSession(sessionId))) expect(m.value!.length).toBeLessThanOrEqual(1024 * 1024);
    const lines = mine.flatMap((m) => decompressLz4Frames(m.payload).toString('utf8').trimEnd().split('\n'));
    expect(lines.map((line) => JSON.parse(line)[1])).toEqual(events);
    expect(mine.reduce((n, m) => n + m.header.eventCount, 0)).toBe(events.length);
  });
});

describe('capture under concurrent requests', () => {
  let capture: TestCapture;

  beforeAll(async () => {
    capture = await startTestCapture({ brokers: stack.kafka!.brokers, databaseUrl: stack.postgres!.url });
  });
  afterAll(() => capture?.stop());

  // Messages are built into pooled buffers that go back to the pool once their transaction has settled: a buffer
  // lent again too early would put one request's bytes into another's message (which its CRC would not notice, as it
  // is computed over the new bytes).
  it('puts on Kafka exactly the events each request sent, with many requests in flight at once', async () => {
    const team = await capture.createTeam();
    const requests = Array.from({ length: 48 }, () => {
      const sessionId = randomUUID();
      const events = Array.from({ length: 4 }, (_, i) => ({
        type: 3,
        timestamp: 1_763_800_000_000 + i,
        // ~36 KB per event, different in every request: messages of ~50 KB compressed, past the pooling threshold.
        data: {
          source: 0,
          adds: [{ text: `${sessionId}:${i}:`.repeat(500) + randomBytes(12_000).toString('base64') }],
        },
      }));
      return { sessionId, events, body: gzipSync(json(snapshotBody(team.apiToken, sessionId, events))) };
    });
    const answers = await Promise.all(requests.map((r) => postRaw(`${capture.url}/s/`, r.body)));
    expect(answers.map((a) => a.status)).toEqual(requests.map(() => 200));

    const sessions = new Set(requests.map((r) => r.sessionId));
    const messages = await readTopic(stack.kafka!.brokers, topicNames.recordings, {
      done: (got) => {
        const seen = new Set(got.map((m) => headerOf(m as never, 'session_id')));
        return [...sessions].every((id) => seen.has(id));
      },
    });
    for (const { sessionId, events } of requests) {
      const mine = messages.filter(forSession(sessionId)).map((m) => decodeRecordingMessage(m.value!));
      const lines = mine.flatMap((m) => decompressLz4Frames(m.payload).toString('utf8').trimEnd().split('\n'));
      expect(lines.map((line) => JSON.parse(line)[1])).toEqual(events);
    }
    // ...and it ran the native paths this test is about (scripts/setup builds them).
    const metrics = await (await fetch(`${capture.url}/metrics`)).text();
    expect(metrics).toMatch(/^capture_native_addon\{addon="json-skip"[^}]*\} 1$/m);
    expect(metrics).toMatch(/^capture_native_addon\{addon="gzip-inflate"[^}]*\} 1$/m);
  });
});

describe('capture limits', () => {
  let capture: TestCapture;

  beforeAll(async () => {
    capture = await startTestCapture({
      brokers: stack.kafka!.brokers,
      databaseUrl: stack.postgres!.url,
      env: {
        CAPTURE_TEAM_REQUESTS_PER_SECOND: '2',
        CAPTURE_SESSION_BYTES_PER_SECOND: '1024',
        CAPTURE_SESSION_BURST_BYTES: String(64 * 1024),
      },
    });
  });
  afterAll(() => capture?.stop());

  it('answers 429 once a team passes its request rate', async () => {
    const team = await capture.createTeam();
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const body = gzipSync(json(snapshotBody(team.apiToken, randomUUID(), sampleRrwebEvents())));
      statuses.push((await postRaw(`${capture.url}/s/`, body)).status);
    }
    expect(statuses.slice(0, 4)).toEqual([200, 200, 200, 200]);
    expect(statuses).toContain(429);
  });

  it('routes a session that outruns its byte budget to the overflow topic, and keeps it there', async () => {
    const team = await capture.createTeam();
    const sessionId = randomUUID();
    // ~40 KB of JSONL per request against a 64 KB burst refilled at 1 KB/s.
    const chunk = (base: number) =>
      Array.from({ length: 8 }, (_, i) => ({
        type: 3,
        timestamp: base + i,
        data: { source: 0, adds: [{ text: randomBytes(3750).toString('base64') }] },
      }));
    const send = (events: unknown[]) =>
      postRaw(`${capture.url}/s/`, json(snapshotBody(team.apiToken, sessionId, events)));
    expect((await send(chunk(1_763_800_000_000))).status).toBe(200); // fits the burst: main topic
    expect((await send(chunk(1_763_800_001_000))).status).toBe(200); // over budget: overflow
    expect((await send(sampleRrwebEvents())).status).toBe(200); // would fit again, but the session stays in overflow

    const main = await readTopic(stack.kafka!.brokers, topicNames.recordings, {
      done: (got) => got.some(forSession(sessionId)),
    });
    const overflow = await readTopic(stack.kafka!.brokers, topicNames.recordingsOverflow, {
      done: (got) => got.filter(forSession(sessionId)).length >= 2,
    });
    const eventCounts = (messages: typeof main) =>
      messages.filter(forSession(sessionId)).map((m) => decodeRecordingMessage(m.value!).header.eventCount);
    expect(eventCounts(main)).toEqual([8]);
    expect(eventCounts(overflow)).toEqual([8, sampleRrwebEvents().length]);
  });
});

describe('capture with Kafka down', () => {
  let dir: string;
  let kafka: LocalKafka;
  let capture: TestCapture;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'replay-capture-outage-'));
    kafka = await startLocalKafka(loadConfig(), { dir });
    await ensureTopics(kafka.brokers, pipelineTopics(2));
    capture = await startTestCapture({
      brokers: kafka.brokers,
      databaseUrl: 'pglite://memory',
      env: { CAPTURE_COMMIT_TIMEOUT_MS: '3000' },
    });
  });
  afterAll(async () => {
    await capture?.stop();
    await kafka?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 503 while the broker is down, writes nothing for those requests, and recovers after', async () => {
    const team = await capture.createTeam();
    const post = (sessionId: string) =>
      postRaw(`${capture.url}/s/`, gzipSync(json(snapshotBody(team.apiToken, sessionId, sampleRrwebEvents()))));
    const before = randomUUID();
    expect((await post(before)).status).toBe(200);

    await kafka.process.kill();
    const during = [randomUUID(), randomUUID(), randomUUID()];
    const answers = [];
    for (const id of during) answers.push(await post(id));
    for (const answer of answers) expect(answer).toMatchObject({ status: 503, body: { code: 'kafka_unavailable' } });

    await kafka.restart();
    const after = randomUUID();
    const deadline = Date.now() + 60_000;
    let status = 0;
    while (Date.now() < deadline && status !== 200) {
      status = (await post(after)).status;
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(status).toBe(200);

    const messages = await readTopic(kafka.brokers, topicNames.recordings, {
      done: (got) => got.some(forSession(after)),
    });
    const sessions = messages.map((m) => headerOf(m, 'session_id'));
    expect(sessions.filter((s) => s === before)).toHaveLength(1);
    expect(sessions.filter((s) => s === after).length).toBeGreaterThanOrEqual(1);
    for (const id of during) expect(sessions).not.toContain(id);
  });
});

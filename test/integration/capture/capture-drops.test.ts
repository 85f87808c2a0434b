import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { decompressLz4Frames } from '../../../src/codec/lz4-frames.ts';
import { topicNames } from '../../../src/kafka/topics.ts';
import { decodeRecordingMessage } from '../../../src/recordings/message-codec.ts';
import type { Team } from '../../../src/teams/team-store.ts';
import { postRaw, sampleRrwebEvents, snapshotBody, startTestCapture, type TestCapture } from '../../support/capture.ts';
import { headerOf, readTopic } from '../../support/kafka.ts';

const stack = inject('stack');
const json = (value: unknown) => Buffer.from(JSON.stringify(value));

/** One `$snapshot` item, as posthog-js sends it. */
const item = (token: string, sessionId: string, events: unknown[], props: Record<string, unknown> = {}) =>
  snapshotBody(token, sessionId, events, props)[0]!;

async function droppedCounts(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const match of text.matchAll(/^capture_dropped_events_total\{([^}]*)\} (\d+)/gm)) {
    const reason = /reason="([^"]+)"/.exec(match[1]!)?.[1];
    if (reason) counts[reason] = Number(match[2]);
  }
  return counts;
}

describe('capture drops the events that break an input bound, alone, and accepts the rest', () => {
  let capture: TestCapture;
  let team: Team;

  beforeAll(async () => {
    capture = await startTestCapture({ brokers: stack.kafka!.brokers, databaseUrl: stack.postgres!.url });
    team = await capture.createTeam();
  });
  afterAll(() => capture?.stop());

  it('answers 200 with what was dropped; the good events reach Kafka; the metric counts the drops by reason', async () => {
    const before = await droppedCounts(capture.url);
    const kept = randomUUID();
    const droppedSession = randomUUID();
    const good = sampleRrwebEvents();
    const body = [
      item(team.apiToken, kept, [
        good[0],
        { type: 3, timestamp: 9e15, data: { source: 1 } }, // past DateTime64
        good[1],
        { type: 3, timestamp: 0, data: {} },
        { type: 3, timestamp: String(good[2]!.timestamp), data: {} }, // a string
        good[2],
        { timestamp: Date.now(), data: {} }, // no type
        { ...good[3]!, timestamp: (good[3]!.timestamp as number) + 0.5 }, // fractional: valid
      ]),
      item(team.apiToken, droppedSession, sampleRrwebEvents(), { distinct_id: 'd'.repeat(201) }),
      item(team.apiToken, '../etc/passwd', sampleRrwebEvents()),
      item(team.apiToken, kept, good.slice(4)),
    ];
    const answer = await postRaw(`${capture.url}/s/`, gzipSync(json(body)), { 'content-type': 'text/plain' });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({
      status: 1,
      dropped: 16,
      dropped_by_code: {
        timestamp_out_of_range: 1,
        invalid_timestamp: 2,
        invalid_event: 1,
        distinct_id_too_long: 6,
        invalid_session_id: 6,
      },
      dropped_events: [
        { item: 0, event: 1, code: 'timestamp_out_of_range' },
        { item: 0, event: 3, code: 'invalid_timestamp' },
        { item: 0, event: 4, code: 'invalid_timestamp' },
        { item: 0, event: 6, code: 'invalid_event' },
        { item: 1, code: 'distinct_id_too_long' },
        { item: 2, code: 'invalid_session_id' },
      ],
    });

    const messages = await readTopic(stack.kafka!.brokers, topicNames.recordings, {
      done: (got) => got.some((m) => headerOf(m, 'session_id') === kept),
    });
    const mine = messages
      .filter((m) => headerOf(m, 'session_id') === kept)
      .map((m) => decodeRecordingMessage(m.value!));
    expect(mine).toHaveLength(1);
    const events = decompressLz4Frames(mine[0]!.payload)
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line)[1]);
    expect(events).toEqual([
      good[0],
      good[1],
      good[2],
      { ...good[3]!, timestamp: (good[3]!.timestamp as number) + 0.5 },
      ...good.slice(4),
    ]);
    expect(mine[0]!.header.eventCount).toBe(6);
    expect(messages.some((m) => headerOf(m, 'session_id') === droppedSession)).toBe(false);

    const after = await droppedCounts(capture.url);
    const delta = (reason: string) => (after[reason] ?? 0) - (before[reason] ?? 0);
    expect(delta('timestamp_out_of_range')).toBe(1);
    expect(delta('invalid_timestamp')).toBe(2);
    expect(delta('invalid_event')).toBe(1);
    expect(delta('distinct_id_too_long')).toBe(6);
    expect(delta('invalid_session_id')).toBe(6);
  });

  it('a request whose every event is dropped fails with the first code and counts no drop', async () => {
    const before = await droppedCounts(capture.url);
    const answer = await postRaw(
      `${capture.url}/s/`,
      json([
        item(team.apiToken, randomUUID(), [
          { type: 3, timestamp: -1 },
          { type: 3, timestamp: 9e15 },
        ]),
      ]),
    );
    expect(answer.status).toBe(400);
    expect(answer.body.code).toBe('invalid_timestamp');
    expect(await droppedCounts(capture.url)).toEqual(before);
  });

  it('a clean request answers exactly {"status":1}', async () => {
    const answer = await postRaw(
      `${capture.url}/s/`,
      gzipSync(json([item(team.apiToken, randomUUID(), sampleRrwebEvents())])),
    );
    expect(answer).toEqual({ status: 200, body: { status: 1 } });
  });
});

import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ensureTopics } from '../../../src/kafka/admin.ts';
import { topicNames } from '../../../src/kafka/topics.ts';
import { decodeObject } from '../../../src/recordings/blob-object.ts';
import { encodeRecordingMessage } from '../../../src/recordings/message-codec.ts';
import type { SummaryRow } from '../../../src/recordings/summary-row.ts';
import type { S3BlobStore } from '../../../src/storage/s3-blob-store.ts';
import {
  blockEvents,
  freshBucketStore,
  sessionMessages,
  startTestBlobConsumer,
  testTeam,
} from '../../support/blob-consumer.ts';
import { expectedSummary, syntheticSession } from '../../support/expected-summary.ts';
import { headerOf, produceAll, readTopic } from '../../support/kafka.ts';
import { sampleHeader } from '../../support/recordings.ts';

const stack = inject('stack');
const brokers = stack.kafka!.brokers;

function rowsOf(messages: { value: Buffer | null }[], teamIds: Set<number>): SummaryRow[] {
  return messages.map((m) => JSON.parse(m.value!.toString()) as SummaryRow).filter((r) => teamIds.has(r.team_id));
}

describe('blob consumer (real Kafka, real MinIO)', () => {
  const topic = `recordings-test-${randomUUID()}`;
  const base = Date.UTC(2026, 10, 20, 9, 0, 0);
  const teams = [
    testTeam(900_001 + Math.floor(Math.random() * 1000), '30d'),
    testTeam(910_001 + Math.floor(Math.random() * 1000), '1y'),
  ];
  const sessions = Array.from({ length: 40 }, (_, i) => ({
    team: teams[i % 2]!,
    sessionId: randomUUID(),
    events: syntheticSession(i + 1, base + i * 60_000, 60 + (i % 7) * 20),
  }));
  let store: S3BlobStore;
  let consumer: Awaited<ReturnType<typeof startTestBlobConsumer>>;
  let rows: SummaryRow[] = [];

  beforeAll(async () => {
    await ensureTopics(brokers, [{ name: topic, partitions: 4, config: {} }]);
    store = await freshBucketStore();
    const good = sessions.flatMap((s) => sessionMessages(topic, s.team, s.sessionId, s.events, 4));
    const poison = [
      { topic, key: 'p1', value: encodeRecordingMessage(sampleHeader(), Buffer.from('x')).subarray(0, 20) },
      {
        topic,
        key: 'p2',
        value: Buffer.concat([Buffer.from('RPLM'), Buffer.from([9, 0, 0, 0, 0, 2]), Buffer.from('{}')]),
      },
      { topic, key: 'p3', value: Buffer.from('{"not": "a recording"}') },
      { topic, key: 'p4', value: Buffer.from('garbage\u0000\u0001') },
    ];
    // Interleave poison with good messages: the good ones around them must flow. Some good messages come twice, as
    // when a client resends a request capture committed but never answered: each must be stored once.
    const records = [
      ...good.slice(0, 50),
      ...poison.slice(0, 2),
      ...good.slice(50, 120),
      ...poison.slice(2),
      ...good.slice(120),
      ...good.slice(30, 36),
    ];
    await produceAll(brokers, records);
    consumer = await startTestBlobConsumer({ brokers, topic, store });
    const teamIds = new Set(teams.map((t) => t.id));
    const expectedEvents = sessions.reduce((n, s) => n + s.events.length, 0);
    const messages = await readTopic(brokers, topicNames.replaySummaries, {
      done: (got) => rowsOf(got, teamIds).reduce((n, r) => n + r.event_count, 0) >= expectedEvents,
      timeoutMs: 90_000,
    });
    rows = rowsOf(messages, teamIds);
  });
  afterAll(async () => {
    await consumer?.stop();
  });

  it('stores every session as blocks whose events are exactly the session, in order', async () => {
    for (const session of sessions) {
      const mine = rows
        .filter((r) => r.session_id === session.sessionId)
        .sort((a, b) => a.source_offsets.localeCompare(b.source_offsets, 'en', { numeric: true }));
      expect(mine.length, session.sessionId).toBeGreaterThan(0);
      const lines = (await Promise.all(mine.map((r) => blockEvents(store, r)))).flat();
      expect(lines.map(([, e]) => e)).toEqual(session.events);
      expect(new Set(lines.map(([w]) => w))).toEqual(new Set(['w1']));
    }
  });

  it('writes summary rows whose sums match the events, computed independently', () => {
    for (const session of sessions) {
      const mine = rows.filter((r) => r.session_id === session.sessionId);
      const expected = expectedSummary(session.events);
      const sum = (key: keyof SummaryRow) => mine.reduce((n, r) => n + (r[key] as number), 0);
      expect({
        eventCount: sum('event_count'),
        clickCount: sum('click_count'),
        keypressCount: sum('keypress_count'),
        mouseActivityCount: sum('mouse_activity_count'),
        consoleLogCount: sum('console_log_count'),
        consoleWarnCount: sum('console_warn_count'),
        consoleErrorCount: sum('console_error_count'),
        activeMilliseconds: sum('active_milliseconds'),
        messageCount: sum('message_count'),
      }).toEqual({
        eventCount: expected.eventCount,
        clickCount: expected.clickCount,
        keypressCount: expected.keypressCount,
        mouseActivityCount: expected.mouseActivityCount,
        consoleLogCount: expected.consoleLogCount,
        consoleWarnCount: expected.consoleWarnCount,
        consoleErrorCount: expected.consoleErrorCount,
        activeMilliseconds: expected.activeMilliseconds,
        messageCount: 4,
      });
      const first = mine.map((r) => r.first_timestamp).sort()[0];
      expect(first).toBe(new Date(expected.firstTimestamp).toISOString().replace('T', ' ').replace('Z', ''));
      expect(mine.every((r) => r.team_id === session.team.id)).toBe(true);
      expect(mine.every((r) => r.retention_period_days === (session.team.retention === '1y' ? 365 : 30))).toBe(true);
      const firstUrlRow = mine
        .filter((r) => r.first_url !== null)
        .sort((a, b) => a.first_url_timestamp!.localeCompare(b.first_url_timestamp!))[0];
      expect(firstUrlRow?.first_url).toBe(expected.firstUrl);
      expect(new Set(mine.flatMap((r) => r.urls))).toEqual(new Set(expected.urls));
    }
  });

  it('puts many sessions in one object per retention class, with a footer that indexes them', async () => {
    const keys: string[] = [];
    for await (const key of store.list('session_recordings/')) keys.push(key);
    expect(keys.some((k) => k.startsWith('session_recordings/30d/'))).toBe(true);
    expect(keys.some((k) => k.startsWith('session_recordings/1y/'))).toBe(true);
    expect(keys.length).toBeLessThan(sessions.length);
    let blocks = 0;
    for (const key of keys) {
      const size = (await store.size(key))!;
      const footer = decodeObject(await store.getRange(key, 0, size - 1));
      expect(new Set(footer.blocks.map((b) => b.teamId)).size).toBeGreaterThan(0);
      expect(key.split('/')[1]).toBe(footer.retention);
      blocks += footer.blocks.length;
    }
    expect(blocks).toBe(rows.length);
  });

  it('sends malformed, truncated and wrong-version messages to the DLQ with a reason and their source', async () => {
    const dlq = await readTopic(brokers, topicNames.recordingsDlq, {
      done: (got) => got.filter((m) => headerOf(m, 'dlq_source_topic') === topic).length >= 4,
    });
    const mine = dlq.filter((m) => headerOf(m, 'dlq_source_topic') === topic);
    expect(mine.map((m) => [m.key?.toString(), headerOf(m, 'dlq_reason')]).sort()).toEqual([
      ['p1', 'message_truncated'],
      ['p2', 'message_unsupported_version'],
      ['p3', 'legacy_message_invalid'],
      ['p4', 'legacy_message_invalid'],
    ]);
    for (const m of mine) {
      expect(Number(headerOf(m, 'dlq_source_offset'))).toBeGreaterThanOrEqual(0);
      expect(headerOf(m, 'dlq_source_partition')).toMatch(/^\d+$/);
    }
  });
});

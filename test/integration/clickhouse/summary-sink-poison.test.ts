import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../../src/clickhouse/migrations.ts';
import { ensureTopics } from '../../../src/kafka/admin.ts';
import { topicNames } from '../../../src/kafka/topics.ts';
import { clickhouseTime, type SummaryRow } from '../../../src/recordings/summary-row.ts';
import { headerOf, produceAll, readTopic } from '../../support/kafka.ts';
import { eventually, groupOffsets } from '../../support/kafka-offsets.ts';
import { metricValue, scrape } from '../../support/metrics.ts';
import { startTestSink } from '../../support/pipeline.ts';

const brokers = inject('stack').kafka!.brokers;

function row(teamId: number, sessionId: string, startMs: number, offset: number): SummaryRow {
  return {
    team_id: teamId,
    session_id: sessionId,
    distinct_id: 'u',
    first_timestamp: clickhouseTime(startMs),
    last_timestamp: clickhouseTime(startMs + 1000),
    block_url: `s3://b/k?range=bytes=${offset * 10}-${offset * 10 + 9}`,
    first_url: null,
    first_url_timestamp: null,
    urls: [],
    click_count: 1,
    keypress_count: 2,
    mouse_activity_count: 0,
    active_milliseconds: 1000,
    console_log_count: 0,
    console_warn_count: 0,
    console_error_count: 0,
    size: 100,
    event_count: 3,
    message_count: 1,
    snapshot_source: 'web',
    snapshot_library: 'web',
    retention_period_days: 30,
    source_offsets: `recordings:0:${offset}-${offset}`,
  };
}

describe('ClickHouse sink on poison and wide batches (real Kafka, chDB)', () => {
  it('inserts a batch spanning 120 months in inserts ClickHouse takes, and quarantines messages that are not rows', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'replay-sink-poison-'));
    const clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
    await migrateClickHouse(clickhouse);
    const topic = `summaries-poison-${randomUUID()}`;
    await ensureTopics(brokers, [{ name: topic, partitions: 1, config: {} }]);
    const teamId = 990_000 + Math.floor(Math.random() * 5000);
    // Months to come: rows past their retention would be deleted by the table's TTL (0014) as soon as stored.
    const rows = Array.from({ length: 120 }, (_, i) =>
      row(teamId, randomUUID(), Date.UTC(2040 + Math.floor(i / 12), i % 12, 10), i),
    );
    const records = rows.map((r) => ({ topic, key: r.session_id, value: Buffer.from(JSON.stringify(r)) }));
    const poison = [
      { topic, key: 'not-json', value: Buffer.from('{"team_id": 1, ') },
      { topic, key: 'fractional', value: Buffer.from(JSON.stringify({ ...rows[0]!, active_milliseconds: 12.5 })) },
      {
        topic,
        key: 'year-2400',
        value: Buffer.from(JSON.stringify({ ...rows[1]!, first_timestamp: '2400-01-01 00:00:00.000' })),
      },
    ];
    // Everything lands in one batch: the sink starts after it is all on the topic.
    await produceAll(brokers, [...records.slice(0, 60), ...poison, ...records.slice(60)]);
    const groupId = `sink-poison-${randomUUID()}`;
    const sink = await startTestSink({ brokers, topic, groupId, clickhouse, env: { SINK_INSERT_INTERVAL_MS: '1000' } });
    try {
      await eventually(async () => {
        const o = await groupOffsets(brokers, groupId, topic, 1);
        return o.committed[0] === o.end[0];
      }, 'the sink to commit everything');
      const metrics = await scrape(sink.http.url);
      expect(metricValue(metrics, 'clickhouse_rows_inserted_total')).toBe(120);
      // Cut by month before ClickHouse could refuse the batch: no insert was refused, none bisected.
      expect(metricValue(metrics, 'clickhouse_inserts_total')).toBeGreaterThanOrEqual(3);
      expect(metricValue(metrics, 'clickhouse_insert_bisections_total')).toBe(0);
      expect(metricValue(metrics, 'clickhouse_dead_letters_total', { reason: 'summary_row_invalid' })).toBe(3);
    } finally {
      await sink.stop();
    }
    const [stored] = await (
      await clickhouse.query({
        query: `SELECT uniqExact(session_id) AS sessions, sum(event_count) AS events FROM session_replay_events
                 WHERE team_id = {team:Int64}`,
        query_params: { team: teamId },
        format: 'JSONEachRow',
      })
    ).json<{ sessions: number; events: number }>();
    expect({ sessions: Number(stored!.sessions), events: Number(stored!.events) }).toEqual({
      sessions: 120,
      events: 360,
    });
    const dlq = await readTopic(brokers, topicNames.replaySummariesDlq, {
      done: (got) => got.filter((m) => headerOf(m, 'dlq_source_topic') === topic).length >= 3,
    });
    const mine = dlq.filter((m) => headerOf(m, 'dlq_source_topic') === topic);
    expect(mine.map((m) => [m.key?.toString(), headerOf(m, 'dlq_reason')]).sort()).toEqual([
      ['fractional', 'summary_row_invalid'],
      ['not-json', 'summary_row_invalid'],
      ['year-2400', 'summary_row_invalid'],
    ]);
    await clickhouse.close();
    await rm(dir, { recursive: true, force: true });
  });
});

import { describe, expect, it } from 'vitest';
import { classifyClickHouseError } from '../../../src/clickhouse/errors.ts';
import { compressLz4Frame } from '../../../src/codec/lz4-frames.ts';
import { asReplayError, classOfCode, type ErrorCode, errorCatalogue, ReplayError } from '../../../src/errors/index.ts';
import { activeMilliseconds } from '../../../src/recordings/activity.ts';
import { MAX_TIMESTAMP_MS, timestampProblem } from '../../../src/recordings/bounds.ts';
import { decodeRecordingMessage, encodeRecordingMessage } from '../../../src/recordings/message-codec.ts';
import { rrwebEventProblem } from '../../../src/recordings/rrweb.ts';
import { summaryRowProblem } from '../../../src/recordings/summary-row.ts';
import { sampleHeader } from '../../support/recordings.ts';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (error) {
    return (error as ReplayError).code;
  }
};

describe('the error contract: every failure has one class, decided by its code', () => {
  it('classes: fatal codes exit, retriable codes are transient, the rest is poison', () => {
    expect(classOfCode('producer_fenced')).toBe('fatal');
    expect(classOfCode('config_invalid')).toBe('fatal');
    for (const code of ['kafka_unavailable', 'clickhouse_unavailable', 'blob_store_unavailable', 'disk_full'] as const)
      expect(classOfCode(code)).toBe('transient');
    for (const code of ['message_header_invalid', 'payload_corrupt', 'clickhouse_rejected', 'unhandled_error'] as const)
      expect(classOfCode(code)).toBe('poison');
    for (const [code, spec] of Object.entries(errorCatalogue)) {
      const kind = classOfCode(code as ErrorCode);
      expect(kind === 'transient', code).toBe(spec.retriable);
      expect(new ReplayError(code as ErrorCode, 'x').errorClass).toBe(kind);
    }
  });

  it('anything thrown becomes a catalogue error: ENOSPC is backpressure, the unknown is transient', () => {
    const enospc = Object.assign(new Error('write failed'), { code: 'ENOSPC' });
    expect(asReplayError(enospc)).toMatchObject({ code: 'disk_full', errorClass: 'transient' });
    expect(asReplayError(new TypeError('x is undefined'))).toMatchObject({
      code: 'internal_error',
      errorClass: 'transient',
    });
    const known = new ReplayError('payload_corrupt', 'bad');
    expect(asReplayError(known)).toBe(known);
  });

  it("ClickHouse errors are poison only when they are about the rows' content", () => {
    const chdb = (type: string) => Object.assign(new Error(`${type} happened`), { code: '6', type });
    expect(classifyClickHouseError(chdb('CANNOT_PARSE_TEXT')).code).toBe('clickhouse_rejected');
    expect(classifyClickHouseError(chdb('VIOLATED_CONSTRAINT')).code).toBe('clickhouse_rejected');
    expect(classifyClickHouseError(chdb('TOO_MANY_PARTITIONS')).code).toBe('clickhouse_rejected');
    expect(classifyClickHouseError(chdb('TOO_MANY_PARTS')).code).toBe('clickhouse_unavailable');
    expect(classifyClickHouseError(chdb('UNKNOWN_TABLE')).code).toBe('clickhouse_unavailable');
    expect(
      classifyClickHouseError(
        new Error('Code: 27. DB::Exception: Cannot parse input (CANNOT_PARSE_INPUT_ASSERTION_FAILED)'),
      ).code,
    ).toBe('clickhouse_rejected');
    expect(classifyClickHouseError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })).code).toBe(
      'clickhouse_unavailable',
    );
  });
});

describe('input bounds (DESIGN §3.5.1)', () => {
  it('timestamps: finite, above 0, inside DateTime64; fractional milliseconds are fine', () => {
    expect(timestampProblem(1_764_500_000_000.375)).toBeUndefined();
    expect(timestampProblem(MAX_TIMESTAMP_MS)).toBeUndefined();
    expect(timestampProblem(MAX_TIMESTAMP_MS + 1)).toBe('timestamp_out_of_range');
    expect(timestampProblem(9e15)).toBe('timestamp_out_of_range');
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '1764500000000', null, undefined])
      expect(timestampProblem(bad), String(bad)).toBe('invalid_timestamp');
    expect(rrwebEventProblem({ type: 3.5, timestamp: 1 })).toBe('invalid_event');
    expect(rrwebEventProblem({ timestamp: 1 })).toBe('invalid_event');
    expect(rrwebEventProblem([1, 2])).toBe('invalid_event');
    expect(rrwebEventProblem({ type: 3, timestamp: 1.5 })).toBeUndefined();
  });

  it('a message header that breaks a bound is poison, whoever produced it', () => {
    const message = (overrides: Record<string, unknown>) =>
      encodeRecordingMessage(sampleHeader(overrides as never), compressLz4Frame(Buffer.from('["w",{}]\n')));
    expect(codeOf(() => decodeRecordingMessage(message({})))).toBeUndefined();
    expect(codeOf(() => decodeRecordingMessage(message({ firstTimestamp: 1_763_800_000_000.25 })))).toBeUndefined();
    for (const overrides of [
      { firstTimestamp: 9e15, lastTimestamp: 9e15 },
      { firstTimestamp: -5 },
      { lastTimestamp: 'soon' },
      { distinctId: 'd'.repeat(201) },
      { snapshotLibrary: 'l'.repeat(1001) },
      { windowIds: Array.from({ length: 101 }, (_, i) => `w${i}`) },
      { windowIds: ['../etc'] },
      { sessionId: 'x'.repeat(71) },
      { teamId: 1.5 },
      { clickCount: 2 ** 60 },
      { urls: ['u'.repeat(3000)] },
    ]) {
      expect(
        codeOf(() => decodeRecordingMessage(message(overrides))),
        JSON.stringify(overrides).slice(0, 60),
      ).toBe('message_header_invalid');
    }
  });

  it('active time of fractional timestamps is whole milliseconds', () => {
    expect(activeMilliseconds([[1000.25, 1500.5]])).toBe(500);
    expect(
      activeMilliseconds([
        [1000.25, 1000.25],
        [9000.4, 9100.9],
      ]),
    ).toBe(102);
  });

  it('a summary row out of the columns’ bounds is refused before ClickHouse sees it', () => {
    const row = {
      team_id: 1,
      session_id: 's-1',
      distinct_id: 'd',
      first_timestamp: '2026-11-01 10:00:00.000',
      last_timestamp: '2026-11-01 10:00:01.500',
      block_url: 's3://b/k?range=bytes=0-9',
      first_url: null,
      first_url_timestamp: null,
      urls: [],
      click_count: 1,
      keypress_count: 0,
      mouse_activity_count: 0,
      active_milliseconds: 10,
      console_log_count: 0,
      console_warn_count: 0,
      console_error_count: 0,
      size: 10,
      event_count: 2,
      message_count: 1,
      snapshot_source: 'web',
      snapshot_library: 'web',
      retention_period_days: 30,
      source_offsets: 't:0:1-2',
    };
    expect(summaryRowProblem(row)).toBeUndefined();
    expect(summaryRowProblem({ ...row, active_milliseconds: 10.5 })).toMatch(/active_milliseconds/);
    expect(summaryRowProblem({ ...row, first_timestamp: '2300-01-01 00:00:00.000' })).toMatch(/first_timestamp/);
    expect(summaryRowProblem({ ...row, team_id: '1' })).toMatch(/team_id/);
    expect(summaryRowProblem({ ...row, retention_period_days: 31 })).toMatch(/retention/);
    expect(summaryRowProblem('{"team_id":1}')).toBe('not a JSON object');
  });
});

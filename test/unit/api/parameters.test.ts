import { describe, expect, it } from 'vitest';
import { looksLikeApiKey } from '../../../src/api/api-keys.ts';
import {
  encodeCursor,
  parseBlockRange,
  parseListFilters,
  parseSessionId,
  parseTeamId,
} from '../../../src/api/parameters.ts';
import { acceptsGzip } from '../../../src/api/replay-api.ts';
import { isReplayError } from '../../../src/errors/index.ts';

const codeOf = (run: () => unknown) => {
  try {
    run();
  } catch (error) {
    return isReplayError(error) ? error.code : 'not a ReplayError';
  }
  return 'no error';
};
const now = Date.UTC(2026, 10, 22, 12);
const filters = (query: string) => parseListFilters(7, new URLSearchParams(query), now);

describe('replay API parameters', () => {
  it('accepts block ranges inside the session and within the per-request limit only', () => {
    expect(parseBlockRange('3', 10, 5)).toEqual({ first: 3, last: 3 });
    expect(parseBlockRange('0-4', 10, 5)).toEqual({ first: 0, last: 4 });
    for (const bad of ['0-5', '9-10', '10', '4-3', '-1', '1-', 'a', '1e3', ' 1', '1,2', '0-99999999999', ''])
      expect(
        codeOf(() => parseBlockRange(bad, 10, 5)),
        bad,
      ).toBe('invalid_block_range');
  });

  it('lets only plain ids through', () => {
    expect(parseSessionId('0192f0c1-aaaa-7bbb-8ccc-123456789abc')).toBe('0192f0c1-aaaa-7bbb-8ccc-123456789abc');
    for (const bad of ['../../etc/passwd', 'a/b', 'a b', "x' OR 1=1", 'x\u0000', 'é', '', 'a'.repeat(71)])
      expect(
        codeOf(() => parseSessionId(bad)),
        bad,
      ).toBe('invalid_session_id');
    expect(parseTeamId('42')).toBe(42);
    for (const bad of ['0', '-1', '01', '1.5', '1e3', 'abc', '9'.repeat(16)])
      expect(
        codeOf(() => parseTeamId(bad)),
        bad,
      ).toBe('invalid_parameter');
    expect(looksLikeApiKey(`rpk_${'A'.repeat(43)}`)).toBe(true);
    for (const bad of ['rpk_short', `phx_${'A'.repeat(43)}`, `rpk_${'A'.repeat(42)}!`])
      expect(looksLikeApiKey(bad)).toBe(false);
  });

  it('defaults a listing to the last week, 50 per page, and reads every filter', () => {
    expect(filters('')).toEqual({ teamId: 7, from: now - 7 * 86_400_000, to: now + 86_400_000, limit: 50 });
    const cursor = encodeCursor({ startMs: 1234, id: 'abc-1' });
    expect(
      filters(
        `date_from=2026-11-01&date_to=2026-11-02T06:00:00Z&distinct_id=u1&min_duration=30&min_active_seconds=5&limit=10&cursor=${cursor}`,
      ),
    ).toEqual({
      teamId: 7,
      from: Date.UTC(2026, 10, 1),
      to: Date.UTC(2026, 10, 2, 6),
      distinctId: 'u1',
      minDurationMs: 30_000,
      minActiveMs: 5_000,
      limit: 10,
      after: { startMs: 1234, id: 'abc-1' },
    });
  });

  it('refuses absurd or malformed listings', () => {
    const forged = Buffer.from(JSON.stringify([1, "x' OR 1=1"])).toString('base64url');
    for (const bad of [
      'date_from=2026-11-02&date_to=2026-11-01',
      'date_from=2024-01-01&date_to=2026-01-01',
      'date_from=tomorrow',
      'date_from=2026-13-45',
      'limit=0',
      'limit=501',
      'limit=ten',
      'min_duration=-1',
      'min_duration=1e9',
      `distinct_id=${'x'.repeat(201)}`,
      'cursor=%%%',
      `cursor=${forged}`,
      'order=desc',
    ])
      expect(
        codeOf(() => filters(bad)),
        bad,
      ).toBe('invalid_parameter');
  });

  it('reads Accept-Encoding as HTTP means it', () => {
    for (const yes of ['gzip', 'gzip, deflate, br', 'br;q=1.0, GZIP;q=0.5', 'x-gzip'])
      expect(acceptsGzip(yes), yes).toBe(true);
    for (const no of [undefined, '', 'identity', 'br', 'gzip;q=0', 'gzip; q=0.0', 'gzipx', '*'])
      expect(acceptsGzip(no), no).toBe(false);
  });
});

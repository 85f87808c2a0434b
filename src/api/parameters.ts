import { ReplayError } from '../errors/index.ts';
import { SESSION_ID_PATTERN } from '../recordings/rrweb.ts';
import type { ListFilters } from './session-catalog.ts';

const DAY_MS = 86_400_000;
/** A listing looks back this far when `date_from` is not given. */
export const DEFAULT_LIST_DAYS = 7;
/** The widest date window one listing may ask for. */
export const MAX_LIST_DAYS = 366;
export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

/** Checks run on every value a client sends, before it reaches SQL or the blob store. */
export function parseTeamId(raw: string): number {
  if (!/^[1-9][0-9]{0,14}$/.test(raw)) throw new ReplayError('invalid_parameter', `team id "${raw}" is not a number`);
  return Number(raw);
}

export function parseSessionId(raw: string): string {
  if (!SESSION_ID_PATTERN.test(raw)) {
    throw new ReplayError('invalid_session_id', 'session id must be 1-70 characters of [A-Za-z0-9-]');
  }
  return raw;
}

/** `blocks=i` or `blocks=i-j` (inclusive, 0-based) inside a session of `count` blocks, at most `max` of them. */
export function parseBlockRange(raw: string, count: number, max: number): { first: number; last: number } {
  const match = /^(\d{1,9})(?:-(\d{1,9}))?$/.exec(raw);
  if (!match) throw new ReplayError('invalid_block_range', `blocks must be "i" or "i-j", got "${raw.slice(0, 40)}"`);
  const first = Number(match[1]);
  const last = match[2] === undefined ? first : Number(match[2]);
  if (last < first) throw new ReplayError('invalid_block_range', `blocks ${raw}: the range runs backwards`);
  if (last >= count) {
    throw new ReplayError('invalid_block_range', `blocks ${raw}: the session has ${count} blocks (0-${count - 1})`);
  }
  if (last - first + 1 > max) {
    throw new ReplayError('invalid_block_range', `blocks ${raw}: at most ${max} blocks per request`);
  }
  return { first, last };
}

/** An ISO date or date-time as epoch ms; a date-time without a zone is UTC (Date.parse would take it as local time). */
export function parseTime(name: string, raw: string): number {
  // Dates or date-times, nothing Date.parse would guess at ("3", "next week").
  const match = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:?\d{2})?)?$/.exec(raw);
  const ms = match ? Date.parse(match[1] && !match[4] ? `${raw}Z` : raw) : Number.NaN;
  if (!Number.isFinite(ms)) throw new ReplayError('invalid_parameter', `${name} must be an ISO date or date-time`);
  return ms;
}

/** A whole number from 0 to `max`, or undefined when absent or empty. */
export function parseCount(name: string, raw: string | null, max: number): number | undefined {
  if (raw === null || raw === '') return undefined;
  if (!/^\d{1,12}$/.test(raw) || Number(raw) > max) {
    throw new ReplayError('invalid_parameter', `${name} must be a whole number from 0 to ${max}`);
  }
  return Number(raw);
}

/** Refuses any query parameter a route does not know, so a typo is an error rather than a silently ignored filter. */
export function rejectUnknownParameters(query: URLSearchParams, allowed: readonly string[]): void {
  for (const name of query.keys()) {
    if (!allowed.includes(name)) throw new ReplayError('invalid_parameter', `unknown parameter "${name.slice(0, 40)}"`);
  }
}

/** The opaque `cursor` of a page: where the previous page stopped. */
export function encodeCursor(after: { startMs: number; id: string }): string {
  return Buffer.from(JSON.stringify([after.startMs, after.id])).toString('base64url');
}

function decodeCursor(raw: string): { startMs: number; id: string } {
  try {
    const [startMs, id] = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as [unknown, unknown];
    if (typeof startMs === 'number' && Number.isSafeInteger(startMs) && typeof id === 'string') {
      return { startMs, id: parseSessionId(id) };
    }
  } catch {
    // falls through to the error below
  }
  throw new ReplayError('invalid_parameter', 'cursor is not one this API handed out');
}

/**
 * The listing's query string: `date_from`/`date_to` (ISO; default the last 7 days, at most 366 days apart),
 * `distinct_id`, `min_duration` and `min_active_seconds` (seconds), `limit` (1-500, default 50), `cursor`.
 */
export function parseListFilters(teamId: number, query: URLSearchParams, now: number): ListFilters {
  rejectUnknownParameters(query, [
    'date_from',
    'date_to',
    'distinct_id',
    'min_duration',
    'min_active_seconds',
    'limit',
    'cursor',
  ]);
  const to = query.get('date_to') ? parseTime('date_to', query.get('date_to')!) : now + DAY_MS;
  const from = query.get('date_from')
    ? parseTime('date_from', query.get('date_from')!)
    : now - DEFAULT_LIST_DAYS * DAY_MS;
  if (from >= to) throw new ReplayError('invalid_parameter', 'date_from must be before date_to');
  if (to - from > MAX_LIST_DAYS * DAY_MS) {
    throw new ReplayError('invalid_parameter', `date_from and date_to are at most ${MAX_LIST_DAYS} days apart`);
  }
  const distinctId = query.get('distinct_id') ?? undefined;
  if (distinctId !== undefined && (distinctId.length === 0 || distinctId.length > 200)) {
    throw new ReplayError('invalid_parameter', 'distinct_id must be 1-200 characters');
  }
  const minDuration = parseCount('min_duration', query.get('min_duration'), 365 * 86_400);
  const minActive = parseCount('min_active_seconds', query.get('min_active_seconds'), 365 * 86_400);
  const limit = parseCount('limit', query.get('limit'), MAX_PAGE_SIZE) ?? DEFAULT_PAGE_SIZE;
  if (limit < 1) throw new ReplayError('invalid_parameter', `limit must be from 1 to ${MAX_PAGE_SIZE}`);
  const cursor = query.get('cursor');
  return {
    teamId,
    from,
    to,
    limit,
    ...(distinctId !== undefined ? { distinctId } : {}),
    ...(minDuration !== undefined ? { minDurationMs: minDuration * 1000 } : {}),
    ...(minActive !== undefined ? { minActiveMs: minActive * 1000 } : {}),
    ...(cursor ? { after: decodeCursor(cursor) } : {}),
  };
}

import { ReplayError } from '../errors/index.ts';

/**
 * ClickHouse exceptions that are about the data sent, not about ClickHouse: the same rows fail the same way however
 * often they are retried. Everything else (network, timeouts, TOO_MANY_PARTS, memory, a table detached or missing,
 * anything unknown) is transient: retried, never skipped. TOO_MANY_PARTITIONS is a property of a batch, not of a
 * row, so it is here too: splitting the batch cures it, and a single row can never cause it.
 */
const CONTENT_ERRORS: ReadonlySet<string> = new Set([
  'CANNOT_PARSE_TEXT',
  'CANNOT_PARSE_ESCAPE_SEQUENCE',
  'CANNOT_PARSE_QUOTED_STRING',
  'CANNOT_PARSE_INPUT_ASSERTION_FAILED',
  'CANNOT_PARSE_DATE',
  'CANNOT_PARSE_DATETIME',
  'CANNOT_PARSE_NUMBER',
  'CANNOT_PARSE_UUID',
  'CANNOT_PARSE_BOOL',
  'CANNOT_READ_ARRAY_FROM_TEXT',
  'CANNOT_CONVERT_TYPE',
  'CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN',
  'TYPE_MISMATCH',
  'ARGUMENT_OUT_OF_BOUND',
  'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE',
  'DECIMAL_OVERFLOW',
  'INCORRECT_DATA',
  'TOO_LARGE_STRING_SIZE',
  'SIZES_OF_ARRAYS_DONT_MATCH',
  'VIOLATED_CONSTRAINT',
  'TOO_MANY_PARTITIONS',
]);

/** The ClickHouse exception name of an error (`type` from @clickhouse/client, or the `(NAME)` its message ends with). */
export function clickhouseErrorName(error: unknown): string | undefined {
  const type = (error as { type?: unknown } | undefined)?.type;
  if (typeof type === 'string' && /^[A-Z][A-Z0-9_]+$/.test(type)) return type;
  const message = error instanceof Error ? error.message : String(error);
  return /\(([A-Z][A-Z0-9_]{3,})\)/.exec(message)?.[1];
}

/**
 * A ClickHouse failure as a catalogue error: `clickhouse_rejected` (poison: the rows' content) or
 * `clickhouse_unavailable` (transient). Decided by the exception name alone.
 */
export function classifyClickHouseError(error: unknown): ReplayError {
  const name = clickhouseErrorName(error);
  const detail = error instanceof Error ? error.message : String(error);
  if (name !== undefined && CONTENT_ERRORS.has(name)) {
    return new ReplayError('clickhouse_rejected', `${name}: ${detail}`, { cause: error });
  }
  return new ReplayError('clickhouse_unavailable', `${name ?? 'error'}: ${detail}`, { cause: error });
}

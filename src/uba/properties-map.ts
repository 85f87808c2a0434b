import { MAX_PROPERTIES_BYTES, MAX_PROPERTY_KEY_LENGTH, MAX_PROPERTY_VALUE_BYTES } from './behavior-bounds.ts';

/**
 * A behaviour's properties as the record carries them (`properties Map(LowCardinality(String), String)` downstream):
 * an object flattened to string values. A string stays as it is, a number or boolean becomes its `String`, an object
 * or array its JSON (`JSON.stringify`), and null is left out (a map holds no nulls, and `''` would say something else).
 * The size that counts is the JSON of the flattened map, in UTF-8 bytes, as it will travel on the topic.
 *
 * Two policies, one per source:
 * - `strict` (the behaviours API's `extra_data`, which the client writes on purpose): a key that is empty or longer than
 *   200 characters, or a map over 16 KiB, refuses the behaviour (`invalid_extra_data`, `extra_data_too_large`);
 * - `trim` (posthog-js event properties, which the SDK fills with whatever the page has): such a key, a value over
 *   8 KiB, and whatever would take the map past 16 KiB are left out one by one (in property order), and counted; the
 *   event is kept.
 */

export type FlattenPolicy = 'strict' | 'trim';

export type Flattened =
  | { readonly ok: true; readonly properties: Record<string, string>; readonly omitted: number }
  | { readonly ok: false; readonly code: 'invalid_extra_data' | 'extra_data_too_large'; readonly detail: string };

function flatValue(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/** `object`'s own properties, minus `skip`, flattened under `policy`. */
export function flattenProperties(
  object: Readonly<Record<string, unknown>>,
  policy: FlattenPolicy,
  skip: ReadonlySet<string> = new Set(),
): Flattened {
  const entries: [string, string][] = [];
  let bytes = 2; // {}
  let omitted = 0;
  for (const [key, raw] of Object.entries(object)) {
    if (skip.has(key)) continue;
    const value = flatValue(raw);
    if (value === undefined) continue;
    if (key.length === 0 || key.length > MAX_PROPERTY_KEY_LENGTH) {
      if (policy === 'strict') {
        return {
          ok: false,
          code: 'invalid_extra_data',
          detail: `an extra_data key is ${key.length === 0 ? 'empty' : `longer than ${MAX_PROPERTY_KEY_LENGTH} characters`}`,
        };
      }
      omitted++;
      continue;
    }
    const valueBytes = Buffer.byteLength(JSON.stringify(value));
    const entryBytes = Buffer.byteLength(JSON.stringify(key)) + 1 + valueBytes + (entries.length > 0 ? 1 : 0);
    if (policy === 'trim' && (valueBytes > MAX_PROPERTY_VALUE_BYTES || bytes + entryBytes > MAX_PROPERTIES_BYTES)) {
      omitted++;
      continue;
    }
    bytes += entryBytes;
    if (bytes > MAX_PROPERTIES_BYTES) {
      return {
        ok: false,
        code: 'extra_data_too_large',
        detail: `extra_data flattened is more than ${MAX_PROPERTIES_BYTES} bytes of JSON`,
      };
    }
    entries.push([key, value]);
  }
  // fromEntries defines own properties: a `__proto__` key stays a key, never a prototype.
  return { ok: true, properties: Object.fromEntries(entries), omitted };
}

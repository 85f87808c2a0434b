/**
 * What capture reads of a posthog-js `/s/` body, whichever reader produced it: the validating scanner
 * (snapshot-scanner.ts, the fast path for compact UTF-8 bodies) or `JSON.parse` (everything else). Every field holds
 * the value `JSON.parse` gives for it (the last of duplicate keys), with two reductions the decisions in
 * parse-snapshots.ts cannot tell apart: an object or array read only for its kind is `CONTAINER`, and an rrweb event
 * from the scanner is a skeleton holding just the fields the summary and the bounds read.
 */

/** Stands for an object or array value where only "not a string, not a number" matters. */
export const CONTAINER: object = Object.freeze({});

export interface SnapshotBody {
  /** A top-level object is itself the batch's one item; a top-level array holds the items. */
  readonly root: 'array' | 'object';
  /** A top-level object's `api_key` and `token` (undefined for an array). */
  readonly rootApiKey: unknown;
  readonly rootToken: unknown;
  /** One entry per item; undefined for an item that is not an object. */
  readonly items: (SnapshotItem | undefined)[];
}

export interface SnapshotItem {
  readonly event: unknown;
  readonly apiKey: unknown;
  readonly distinctId: unknown;
  /** Undefined when `properties` is missing or not an object. */
  readonly properties: SnapshotProperties | undefined;
}

export interface SnapshotProperties {
  readonly token: unknown;
  readonly sessionId: unknown;
  readonly windowId: unknown;
  readonly distinctId: unknown;
  readonly lib: unknown;
  readonly snapshotSource: unknown;
  /** The elements of `$snapshot_data`; undefined when it is missing or not an array. */
  readonly data: SnapshotElement[] | undefined;
}

export interface SnapshotElement {
  /**
   * The element as `JSON.parse` gives it, or its skeleton: `{type, timestamp, data: {source, type, href, plugin,
   * payload: {level, href}}}` with the fields it has (a non-object element is null).
   */
  readonly event: unknown;
  /** The element's own bytes in the body, compact JSON (no whitespace outside strings); absent from `JSON.parse`. */
  readonly raw: Buffer | undefined;
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The model of a body `JSON.parse` read; undefined when the body is not an array or object. */
export function snapshotBodyOf(parsed: unknown): SnapshotBody | undefined {
  if (Array.isArray(parsed))
    return { root: 'array', rootApiKey: undefined, rootToken: undefined, items: parsed.map(itemOf) };
  if (!isObject(parsed)) return undefined;
  return { root: 'object', rootApiKey: parsed.api_key, rootToken: parsed.token, items: [itemOf(parsed)] };
}

function itemOf(item: unknown): SnapshotItem | undefined {
  if (!isObject(item)) return undefined;
  const props = item.properties;
  return {
    event: item.event,
    apiKey: item.api_key,
    distinctId: item.distinct_id,
    properties: isObject(props)
      ? {
          token: props.token,
          sessionId: props.$session_id,
          windowId: props.$window_id,
          distinctId: props.distinct_id,
          lib: props.$lib,
          snapshotSource: props.$snapshot_source,
          data: Array.isArray(props.$snapshot_data)
            ? props.$snapshot_data.map((event: unknown) => ({ event, raw: undefined }))
            : undefined,
        }
      : undefined,
  };
}

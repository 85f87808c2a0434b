/**
 * The rrweb corpus for benchmarks: sessions recorded by `record.ts` with the real rrweb recorder, amplified into many
 * distinct synthetic sessions, and cut into posthog-js-like `/s/` request bodies.
 *
 * Amplification never re-serialises events: each template event is stringified once without its timestamp (kept as a
 * string and as UTF-8 bytes), and a synthetic session's event is `head + timestamp + '}'`, with USER_TOKEN swapped in
 * the few events that carry it. `copyEvent` / `posthogBatches` copy bytes (GB/s); `eventJson` and `events` are lazy.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/index.ts';
import { prng } from '../shared/prng.ts';
import { USER_TOKEN } from './pages.ts';

export interface RrwebEvent {
  type: number;
  data: unknown;
  timestamp: number;
}

export interface RecordedSession {
  readonly name: string;
  readonly url: string;
  readonly events: RrwebEvent[];
}

export const CORPUS_FILE = 'rrweb-corpus-v1.jsonl';

export function corpusPath(cacheDir = loadConfig().toolchainCache): string {
  return join(cacheDir, 'corpus', CORPUS_FILE);
}

export function loadCorpus(path = corpusPath()): RecordedSession[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as RecordedSession);
}

let cached: Promise<RecordedSession[]> | undefined;

/** The recorded corpus; records it first (headless Chromium, ~1.5 min) when the file is missing. */
export function ensureCorpus(): Promise<RecordedSession[]> {
  cached ??= (async () => {
    const path = corpusPath();
    if (existsSync(path)) return loadCorpus(path);
    const { recordCorpus } = await import('./record.ts');
    return (await recordCorpus({ out: path })).sessions;
  })();
  return cached;
}

interface Template {
  readonly source: RecordedSession;
  /** Event JSON up to and including `"timestamp":`; an array when it contains USER_TOKEN (split on it). */
  readonly heads: (string | string[])[];
  /** The same heads as UTF-8, back to back in one buffer: head k is bytes [headStart[k], headStart[k + 1]). */
  readonly headBytes: Buffer;
  readonly headStart: Uint32Array;
  /** Byte positions of USER_TOKEN inside head k, for the few events that carry it. */
  readonly tokenAt: Map<number, number[]>;
  /** Milliseconds from the template's first event. */
  readonly offsets: Float64Array;
  /** UTF-8 bytes of each event's JSON given a 13-digit timestamp (token swaps keep lengths). */
  readonly sizes: Uint32Array;
  readonly totalBytes: number;
  readonly durationMs: number;
}

const templateCache = new WeakMap<readonly RecordedSession[], Template[]>();

function templates(sessions: readonly RecordedSession[]): Template[] {
  let out = templateCache.get(sessions);
  if (out) return out;
  out = sessions.map((source) => {
    const n = source.events.length;
    const first = source.events[0]?.timestamp ?? 0;
    const heads: (string | string[])[] = [];
    const offsets = new Float64Array(n);
    const sizes = new Uint32Array(n);
    const headStart = new Uint32Array(n + 1);
    const tokenAt = new Map<number, number[]>();
    let totalBytes = 0;
    source.events.forEach((event, k) => {
      const { timestamp, ...rest } = event;
      const json = JSON.stringify(rest);
      const head = `${json.slice(0, -1)}${json.length > 2 ? ',' : ''}"timestamp":`;
      const headLength = Buffer.byteLength(head);
      if (head.includes(USER_TOKEN)) {
        const parts = head.split(USER_TOKEN);
        heads.push(parts);
        const at: number[] = [];
        let pos = 0;
        for (const part of parts.slice(0, -1)) {
          pos += Buffer.byteLength(part);
          at.push(pos);
          pos += USER_TOKEN.length;
        }
        tokenAt.set(k, at);
      } else {
        heads.push(head);
      }
      headStart[k + 1] = headStart[k]! + headLength;
      offsets[k] = timestamp - first;
      sizes[k] = headLength + 14;
      totalBytes += sizes[k]!;
    });
    const headBytes = Buffer.allocUnsafe(headStart[n]!);
    heads.forEach((head, k) => {
      headBytes.write(typeof head === 'string' ? head : head.join(USER_TOKEN), headStart[k]!, 'utf8');
    });
    const durationMs = n ? offsets[n - 1]! : 0;
    return { source, heads, headBytes, headStart, tokenAt, offsets, sizes, totalBytes, durationMs };
  });
  templateCache.set(sessions, out);
  return out;
}

/** One amplified session. Event JSON and objects are built lazily on first access and then cached. */
export class SyntheticSession {
  readonly sessionId: string;
  readonly windowId: string;
  readonly distinctId: string;
  /** Name of the recorded session this one was made from. */
  readonly template: string;
  readonly firstTimestamp: number;
  readonly lastTimestamp: number;
  /** UTF-8 bytes of all event JSON (sum of eventSizes). */
  readonly eventBytes: number;
  /** Per-event UTF-8 JSON sizes, shared with the template: do not mutate. */
  readonly eventSizes: Uint32Array;
  /** Per-event milliseconds since firstTimestamp, shared with the template: do not mutate. */
  readonly eventOffsets: Float64Array;
  readonly #tpl: Template;
  readonly #userToken: string;
  #json: string[] | undefined;
  #events: RrwebEvent[] | undefined;

  constructor(
    tpl: Template,
    ids: { sessionId: string; windowId: string; distinctId: string },
    start: number,
    token: string,
  ) {
    this.sessionId = ids.sessionId;
    this.windowId = ids.windowId;
    this.distinctId = ids.distinctId;
    this.template = tpl.source.name;
    this.firstTimestamp = start;
    this.lastTimestamp = start + tpl.durationMs;
    this.eventBytes = tpl.totalBytes;
    this.eventSizes = tpl.sizes;
    this.eventOffsets = tpl.offsets;
    this.#tpl = tpl;
    this.#userToken = token;
  }

  get eventCount(): number {
    return this.#tpl.heads.length;
  }

  /**
   * Writes event k's JSON (exactly eventSizes[k] bytes) into `target` at `offset` and returns the offset after it:
   * a memcpy of the template bytes plus the timestamp, the fast path for building request bodies or JSONL.
   */
  copyEvent(k: number, target: Buffer, offset: number): number {
    const tpl = this.#tpl;
    const start = tpl.headStart[k]!;
    const end = tpl.headStart[k + 1]!;
    tpl.headBytes.copy(target, offset, start, end);
    const at = tpl.tokenAt.get(k);
    if (at) for (const p of at) target.write(this.#userToken, offset + p, 'latin1');
    let o = offset + end - start;
    o += target.write(String(this.firstTimestamp + tpl.offsets[k]!), o, 'latin1');
    target[o++] = 0x7d; // }
    return o;
  }

  /** Each event as JSON text (built on first access): for benches that want strings rather than bytes. */
  get eventJson(): readonly string[] {
    if (this.#json) return this.#json;
    const { heads, offsets } = this.#tpl;
    const start = this.firstTimestamp;
    const out = new Array<string>(heads.length);
    for (let k = 0; k < heads.length; k++) {
      const head = heads[k]!;
      out[k] = `${typeof head === 'string' ? head : head.join(this.#userToken)}${start + offsets[k]!}}`;
    }
    this.#json = out;
    return out;
  }

  /** Events as objects: shallow copies sharing `data` with the template (do not mutate), parsed where text varies. */
  get events(): RrwebEvent[] {
    if (this.#events) return this.#events;
    const { heads, offsets, source } = this.#tpl;
    const start = this.firstTimestamp;
    const out = new Array<RrwebEvent>(heads.length);
    for (let k = 0; k < heads.length; k++) {
      const head = heads[k]!;
      const timestamp = start + offsets[k]!;
      out[k] =
        typeof head === 'string'
          ? { ...source.events[k]!, timestamp }
          : (JSON.parse(`${head.join(this.#userToken)}${timestamp}}`) as RrwebEvent);
    }
    this.#events = out;
    return out;
  }
}

export interface AmplifyOptions {
  readonly count: number;
  readonly seed?: number;
  /** Start of the first session (epoch ms); default 2026-01-01T00:00:00Z. */
  readonly startMs?: number;
  /** Mean gap between session starts; sessions overlap in time like concurrent visitors. Default 250 ms. */
  readonly spacingMs?: number;
  /** Distinct users the sessions are spread over; default count / 3. */
  readonly users?: number;
}

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const HEX = '0123456789abcdef';

function hexDigits(rand: () => number, n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) out += HEX[(rand() * 16) | 0];
  return out;
}

/** UUIDv7 layout (48-bit ms timestamp first), as posthog-js uses for session and window ids. */
function uuidv7(ms: number, rand: () => number): string {
  const t = Math.floor(ms).toString(16).padStart(12, '0');
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-7${hexDigits(rand, 3)}-${HEX[8 + ((rand() * 4) | 0)]}${hexDigits(rand, 3)}-${hexDigits(rand, 12)}`;
}

/**
 * `count` distinct sessions cycling through the recorded ones; session `i` depends only on (seed, i, users). Each gets
 * its own ids, start time and visitor text (same length as the placeholder, so sizes are stable); distinct ids repeat
 * across sessions like returning users.
 */
export function* amplify(sessions: readonly RecordedSession[], options: AmplifyOptions): Generator<SyntheticSession> {
  const tpls = templates(sessions);
  if (tpls.length === 0) throw new Error('amplify: empty corpus');
  const seed = options.seed ?? 1;
  const startMs = options.startMs ?? Date.UTC(2026, 0, 1);
  const spacing = options.spacingMs ?? 250;
  const users = Math.max(1, options.users ?? Math.ceil(options.count / 3));
  for (let i = 0; i < options.count; i++) {
    const rand = prng((Math.imul(seed, 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b)) >>> 0);
    const start = Math.floor(startMs + i * spacing + rand() * spacing);
    const tpl = tpls[i % tpls.length]!;
    if (start < 1e12 || start + tpl.durationMs >= 1e13) throw new Error('amplify: timestamps must have 13 digits');
    const user = Math.floor(rand() * users);
    const userRand = prng((Math.imul(seed, 0x27d4eb2f) ^ Math.imul(user + 1, 0x165667b1)) >>> 0);
    const distinctId = uuidv7(startMs - 86_400_000 * (1 + (user % 90)), userRand);
    let token = 'U';
    for (let c = 1; c < USER_TOKEN.length; c++) token += ALPHABET[(rand() * 36) | 0];
    const ids = { sessionId: uuidv7(start, rand), windowId: uuidv7(start + 3, rand), distinctId };
    yield new SyntheticSession(tpl, ids, start, token);
  }
}

export interface BatchOptions {
  /** Upper bound on one request body (raw JSON bytes); a single larger event gets a body of its own. Default 1 MB. */
  readonly maxBatchBytes?: number;
  /** posthog-js flushes its snapshot buffer every 2 s of activity; one `$snapshot` item per flush. */
  readonly flushIntervalMs?: number;
  readonly token?: string;
}

/**
 * A session's events as posthog-js `/s/` request bodies: JSON arrays of `$snapshot` events, each item one buffer
 * flush, each body at most ~maxBatchBytes. Bodies are plain JSON; gzip them if the bench wants the usual encoding.
 */
export function posthogBatches(session: SyntheticSession, options: BatchOptions = {}): Buffer[] {
  const maxBytes = options.maxBatchBytes ?? 1_000_000;
  const flushMs = options.flushIntervalMs ?? 2000;
  const token = options.token ?? 'phc_bench_corpus';
  const head = Buffer.from('{"event":"$snapshot","properties":{"$snapshot_data":[');
  const tail = Buffer.from(
    `],"$session_id":"${session.sessionId}","$window_id":"${session.windowId}","$lib":"web",` +
      `"token":${JSON.stringify(token)},"distinct_id":"${session.distinctId}"}}`,
  );
  const sizes = session.eventSizes;
  const offsets = session.eventOffsets;
  const n = sizes.length;
  // Items: runs of events [from, to) within one flush interval and one body; sizes are exact, so lay out first.
  const items: number[] = []; // (from, to, bytes) triples, bytes = whole `{"event":...}` item
  let from = 0;
  let bytes = 0;
  for (let k = 0; k < n; k++) {
    const size = sizes[k]!;
    if (
      k > from &&
      (offsets[k]! - offsets[from]! >= flushMs || head.length + bytes + 1 + size + tail.length + 2 > maxBytes)
    ) {
      items.push(from, k, head.length + bytes + tail.length);
      from = k;
      bytes = 0;
    }
    bytes += (k > from ? 1 : 0) + size;
  }
  if (n > 0) items.push(from, n, head.length + bytes + tail.length);
  const bodies: Buffer[] = [];
  let first = 0;
  let bodyBytes = 2;
  const emit = (last: number) => {
    const body = Buffer.allocUnsafe(bodyBytes);
    let o = 0;
    body[o++] = 0x5b; // [
    for (let t = first; t < last; t += 3) {
      if (t > first) body[o++] = 0x2c; // ,
      o += head.copy(body, o);
      for (let k = items[t]!; k < items[t + 1]!; k++) {
        if (k > items[t]!) body[o++] = 0x2c;
        o = session.copyEvent(k, body, o);
      }
      o += tail.copy(body, o);
    }
    body[o++] = 0x5d; // ]
    if (o !== body.length) throw new Error(`posthogBatches: laid out ${body.length} bytes, wrote ${o}`);
    bodies.push(body);
  };
  for (let t = 0; t < items.length; t += 3) {
    const itemBytes = items[t + 2]!;
    if (t > first && bodyBytes + 1 + itemBytes > maxBytes) {
      emit(t);
      first = t;
      bodyBytes = 2;
    }
    bodyBytes += (t > first ? 1 : 0) + itemBytes;
  }
  if (items.length > 0) emit(items.length);
  return bodies;
}

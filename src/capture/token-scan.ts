import * as jsonBytes from './json-bytes.ts';

/**
 * Finds the project token of a `/s/` body while the body is still arriving (or inflating), so capture can
 * authenticate it before it inflates the rest and runs `JSON.parse` (DESIGN §3.5.1).
 *
 * posthog-js writes the token late: an item's properties are `{$snapshot_bytes, $snapshot_data, $session_id,
 * $window_id, $lib, ..., token, ...}` (`calculateEventProperties` appends `token` to the recorder's properties), so the
 * first token follows the first item's `$snapshot_data`. A fixed-size prefix would miss it whenever that item is large
 * (a full snapshot). Two finders:
 *
 * - the fast one, `Buffer.indexOf` (native, GB/s) for a `"token":` followed by a string or a number: the first one of
 *   a body still arriving (`TokenCandidates`; or an `"api_key":` in its first 64 KiB), or the last one of a body read
 *   whole (`lastTokenCandidate`). For posthog-js this is the token. It can be fooled by such a key inside an event (an
 *   element attribute named `token` is enough), so it only proposes a candidate.
 * - `TokenScanner`, the exact one: follows the JSON structure and reads only the places `parseSnapshotRequest` reads a
 *   token from, a top-level object's `api_key`, `token` and `properties.token`, and each top-level array element's
 *   `api_key` and `properties.token`, skipping everything deeper by counting brackets and stepping over strings. It
 *   runs at ~200 MB/s, so capture uses it only when a candidate was refused (to tell a bad token from a decoy) or when
 *   no candidate exists (escaped keys, whitespace). With `itemTokens` it also reads each top-level array element's own
 *   `token`, where `POST /api/v1/behaviors` bodies carry it (`readBehaviorsRequest`).
 *
 * A string or finite number value counts, as `JSON.parse` would read it (escapes decoded, numbers as
 * `String(Number(text))`). Neither finder checks grammar: on text that is not JSON they find some token or none, and
 * the later `JSON.parse` decides. Nor do they decide which team a request belongs to: the caller checks the token it
 * admitted against the one `parseSnapshotRequest` finally reads (it prefers `properties.token` over `api_key`, the last
 * of duplicate keys, and only `$snapshot` items) and admits that one too when they differ.
 */

// Own constants, not imported bindings, so V8 folds them into the loops (json-bytes.ts).
const { BACKSLASH, COMMA, LBRACE, LBRACKET, QUOTE, RBRACE, RBRACKET } = jsonBytes;

// Roles of the containers the scanner follows (everything else is skipped).
const ROOT_OBJECT = 1;
const ROOT_ARRAY = 2;
const ITEM = 3;
const PROPERTIES = 4;

// What the last key of the current object means.
const KEY_OTHER = 0;
const KEY_TOKEN = 1;
const KEY_PROPERTIES = 2;

// What is being captured.
const CAPTURE_NONE = 0;
const CAPTURE_KEY = 1;
const CAPTURE_STRING = 2;
const CAPTURE_NUMBER = 3;

/** Bytes kept of a key: longer keys are none of the few names looked for, even escaped (`\u0070roperties`...). */
const MAX_KEY_BYTES = 64;
/**
 * Bytes kept of a token value: enough for any token of up to 200 characters even fully escaped; a longer one is
 * returned cut here, still longer than 200 characters, and refused as such.
 */
const MAX_VALUE_BYTES = 1300;

function isNumberByte(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45;
}

export interface TokenScanOptions {
  /** Also read each top-level array element's own `token` (behaviours), besides its `api_key`. */
  readonly itemTokens?: boolean;
}

export class TokenScanner {
  private readonly itemTokens: boolean;
  private readonly roles: number[] = [];
  /** > 0 while inside a container the scanner does not follow: its bracket depth. */
  private skipDepth = 0;
  private inString = false;
  private escaped = false;
  private awaitingKey = false;
  private lastKey = KEY_OTHER;
  private capture = CAPTURE_NONE;
  private readonly captured = Buffer.allocUnsafe(MAX_VALUE_BYTES);
  private capturedLength = 0;
  private result: string | undefined;
  /** Bytes fed so far. */
  scanned = 0;

  constructor(options: TokenScanOptions = {}) {
    this.itemTokens = options.itemTokens === true;
  }

  /** The token found, once found. */
  get token(): string | undefined {
    return this.result;
  }

  /** Reads the next chunk of the body; returns the token as soon as it is found (later chunks are then ignored). */
  feed(chunk: Buffer): string | undefined {
    if (this.result !== undefined) return this.result;
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.skipDepth > 0 || (this.inString && this.capture === CAPTURE_NONE)) {
        i = this.skip(chunk, i);
        continue;
      }
      const c = chunk[i]!;
      if (this.capture === CAPTURE_NUMBER) {
        if (isNumberByte(c) && this.capturedLength < 64) {
          this.captured[this.capturedLength++] = c;
          i++;
          continue;
        }
        this.capture = CAPTURE_NONE;
        const text = this.captured.toString('latin1', 0, this.capturedLength);
        const value = Number(text);
        if (text !== '' && Number.isFinite(value)) this.result = String(value);
        if (this.result !== undefined) break;
        // `c` is the delimiter after the number: handled below
      }
      if (this.inString) {
        // capturing a key or a token value
        i++;
        if (this.escaped) this.escaped = false;
        else if (c === BACKSLASH) this.escaped = true;
        else if (c === QUOTE) {
          this.inString = false;
          this.endCapture();
          if (this.result !== undefined) break;
          continue;
        }
        const max = this.capture === CAPTURE_KEY ? MAX_KEY_BYTES : MAX_VALUE_BYTES;
        if (this.capturedLength < max) this.captured[this.capturedLength++] = c;
        else if (this.capture === CAPTURE_STRING) {
          this.result = this.decodeCaptured(); // over-long: refused for its length
          break;
        }
        continue;
      }
      i++;
      this.structural(c);
    }
    this.scanned += i;
    return this.result;
  }

  /** A byte outside strings, in a followed container (or at the top level). */
  private structural(c: number): void {
    const roles = this.roles;
    const role = roles.length === 0 ? 0 : roles[roles.length - 1]!;
    const inObject = role === ROOT_OBJECT || role === ITEM || role === PROPERTIES;
    if (c === QUOTE) {
      this.inString = true;
      this.escaped = false;
      this.capturedLength = 0;
      if (inObject && this.awaitingKey) this.capture = CAPTURE_KEY;
      else if (inObject && this.lastKey === KEY_TOKEN) this.capture = CAPTURE_STRING;
      else this.capture = CAPTURE_NONE;
    } else if (c === LBRACE) {
      if (role === 0) roles.push(ROOT_OBJECT);
      else if (role === ROOT_ARRAY) roles.push(ITEM);
      else if ((role === ROOT_OBJECT || role === ITEM) && !this.awaitingKey && this.lastKey === KEY_PROPERTIES) {
        roles.push(PROPERTIES);
      } else {
        this.skipDepth = 1;
        return;
      }
      this.awaitingKey = true;
      this.lastKey = KEY_OTHER;
    } else if (c === LBRACKET) {
      if (role === 0) {
        roles.push(ROOT_ARRAY);
        this.lastKey = KEY_OTHER;
      } else this.skipDepth = 1;
    } else if (c === RBRACE || c === RBRACKET) {
      roles.pop();
      this.awaitingKey = false;
      this.lastKey = KEY_OTHER;
    } else if (c === COMMA) {
      if (inObject) this.awaitingKey = true;
      this.lastKey = KEY_OTHER;
    } else if (
      inObject &&
      !this.awaitingKey &&
      this.lastKey === KEY_TOKEN &&
      ((c >= 0x30 && c <= 0x39) || c === 0x2d)
    ) {
      this.capture = CAPTURE_NUMBER;
      this.captured[0] = c;
      this.capturedLength = 1;
    }
  }

  /** Steps over an uncaptured string's bytes or a skipped container's; returns where it stopped. */
  private skip(chunk: Buffer, from: number): number {
    const n = chunk.length;
    let i = from;
    let depth = this.skipDepth;
    let inString = this.inString;
    let escaped = this.escaped;
    while (i < n) {
      const c = chunk[i++]!;
      if (inString) {
        if (escaped) escaped = false;
        else if (c === BACKSLASH) escaped = true;
        else if (c === QUOTE) {
          inString = false;
          if (depth === 0) break; // an uncaptured string in a followed container: back to structure
        }
      } else if (c === QUOTE) inString = true;
      else if (c === LBRACE || c === LBRACKET) depth++;
      else if (c === RBRACE || c === RBRACKET) {
        if (--depth === 0) {
          // the skipped value ended
          this.awaitingKey = false;
          this.lastKey = KEY_OTHER;
          break;
        }
      }
    }
    this.skipDepth = depth;
    this.inString = inString;
    this.escaped = escaped;
    if (!inString && depth === 0) this.capture = CAPTURE_NONE;
    return i;
  }

  private decodeCaptured(): string {
    const raw = this.captured.toString('utf8', 0, this.capturedLength);
    if (!raw.includes('\\')) return raw;
    try {
      return JSON.parse(`"${raw}"`) as string;
    } catch {
      return raw;
    }
  }

  private endCapture(): void {
    const kind = this.capture;
    this.capture = CAPTURE_NONE;
    if (kind === CAPTURE_STRING) {
      this.result = this.decodeCaptured();
      return;
    }
    if (kind !== CAPTURE_KEY) return;
    this.awaitingKey = false;
    const key = this.capturedLength >= MAX_KEY_BYTES ? '' : this.decodeCaptured();
    const role = this.roles[this.roles.length - 1];
    if (key === 'properties' && (role === ROOT_OBJECT || role === ITEM)) this.lastKey = KEY_PROPERTIES;
    else if (
      (key === 'token' && (role === ROOT_OBJECT || role === PROPERTIES || (this.itemTokens && role === ITEM))) ||
      (key === 'api_key' && (role === ROOT_OBJECT || role === ITEM))
    ) {
      this.lastKey = KEY_TOKEN;
    } else this.lastKey = KEY_OTHER;
  }
}

/** The first token of a whole body (see `TokenScanner`), or undefined. */
export function findToken(body: Buffer, options: TokenScanOptions = {}): string | undefined {
  return new TokenScanner(options).feed(body);
}

const TOKEN_KEY = Buffer.from('"token":');
const API_KEY = Buffer.from('"api_key":');
/**
 * How far into a body the fast search looks for `"api_key":` (SDKs that send one write it first: at the top level, or
 * ahead of an item's properties). Past it only `"token":` is searched for, one pass instead of two; an `api_key`
 * further in is still found, by the exact scan, when no candidate turns up.
 */
const API_KEY_WINDOW_BYTES = 64 * 1024;
const INCOMPLETE = Symbol('incomplete');

/** The string or number value at `at` (after a key's colon), undefined for another kind, or INCOMPLETE at the end. */
function valueAt(buf: Buffer, at: number): string | undefined | typeof INCOMPLETE {
  let k = at;
  while (k < buf.length && (buf[k] === 0x20 || buf[k] === 0x09 || buf[k] === 0x0a || buf[k] === 0x0d)) k++;
  if (k >= buf.length) return INCOMPLETE;
  const first = buf[k]!;
  if (first === QUOTE) {
    const start = k + 1;
    const limit = Math.min(buf.length, start + MAX_VALUE_BYTES);
    let escaped = false;
    let hasEscape = false;
    for (let j = start; j < limit; j++) {
      const c = buf[j]!;
      if (escaped) escaped = false;
      else if (c === BACKSLASH) {
        escaped = true;
        hasEscape = true;
      } else if (c === QUOTE) {
        const raw = buf.toString('utf8', start, j);
        if (!hasEscape) return raw;
        try {
          return JSON.parse(`"${raw}"`) as string;
        } catch {
          return raw;
        }
      }
    }
    if (limit === start + MAX_VALUE_BYTES) return buf.toString('utf8', start, limit); // over-long: refused as such
    return INCOMPLETE;
  }
  if ((first >= 0x30 && first <= 0x39) || first === 0x2d) {
    let j = k;
    while (j < buf.length && j - k < 64 && isNumberByte(buf[j]!)) j++;
    if (j >= buf.length) return INCOMPLETE;
    const value = Number(buf.toString('latin1', k, j));
    return Number.isFinite(value) ? String(value) : undefined;
  }
  return undefined;
}

/**
 * The fast finder (see the module comment), over a body arriving in chunks: the first `"token":` with a string or
 * number value (or `"api_key":` in the first 64 KiB), across chunk boundaries.
 */
export class TokenCandidates {
  private carry: Buffer | undefined;
  /** Bytes of the stream before the current window. */
  private offset = 0;
  private result: string | undefined;

  get candidate(): string | undefined {
    return this.result;
  }

  feed(chunk: Buffer): string | undefined {
    if (this.result !== undefined) return this.result;
    const window = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = undefined;
    const windowStart = this.offset;
    // `"api_key":` is looked for only where it starts inside the window's first bytes
    const apiKeyEnd = Math.min(window.length, Math.max(0, API_KEY_WINDOW_BYTES - windowStart) + API_KEY.length - 1);
    let from = 0;
    for (;;) {
      const tokenAt = window.indexOf(TOKEN_KEY, from);
      const apiAt = from < apiKeyEnd ? window.subarray(0, apiKeyEnd).indexOf(API_KEY, from) : -1;
      const at = apiAt !== -1 && (tokenAt === -1 || apiAt < tokenAt) ? apiAt : tokenAt;
      if (at === -1) {
        // keep enough for a key cut in two
        const keep = Math.max(from, window.length - API_KEY.length + 1);
        this.carry = Buffer.from(window.subarray(keep));
        this.offset = windowStart + keep;
        return undefined;
      }
      const value = valueAt(window, at + (at === apiAt ? API_KEY.length : TOKEN_KEY.length));
      if (value === INCOMPLETE) {
        this.carry = Buffer.from(window.subarray(at));
        this.offset = windowStart + at;
        return undefined;
      }
      if (value !== undefined) {
        this.result = value;
        return value;
      }
      from = at + 1;
    }
  }
}

/**
 * The fast finder over a whole body, from its end: the last `"token":` with a string or number value (else the first
 * `"api_key":`). posthog-js writes a token into every item, after the item's events, so the last one is a few KB from
 * the end and this reads almost nothing; every item must carry the same token (`parseSnapshotRequest` refuses
 * others), so it is as good a candidate as the first.
 */
export function lastTokenCandidate(body: Buffer): string | undefined {
  for (let end = body.length; end > 0; ) {
    const at = body.lastIndexOf(TOKEN_KEY, end - 1);
    if (at === -1) break;
    const value = valueAt(body, at + TOKEN_KEY.length);
    if (typeof value === 'string') return value;
    end = at;
  }
  for (let from = 0; ; ) {
    const at = body.indexOf(API_KEY, from);
    if (at === -1) return undefined;
    const value = valueAt(body, at + API_KEY.length);
    if (typeof value === 'string') return value;
    from = at + 1;
  }
}

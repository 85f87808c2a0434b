import { isUtf8 } from 'node:buffer';
import { nativeSkipValue, type SkipValue } from '../native/json-skip.ts';
import * as jsonBytes from './json-bytes.ts';
import {
  CONTAINER,
  type SnapshotBody,
  type SnapshotElement,
  type SnapshotItem,
  type SnapshotProperties,
} from './snapshot-body.ts';

/**
 * Reads a `/s/` body without building its events: a validating JSON scanner that follows the body's bytes, checks the
 * whole grammar, and keeps only what capture reads (the items' ids and tokens, each rrweb event's byte range and the
 * handful of fields the summary needs). It replaces `JSON.parse`, which built every node of every full snapshot only
 * for capture to throw them away, and was capture's largest cost.
 *
 * It takes only the bodies posthog-js sends: valid UTF-8 (checked natively first), compact (no whitespace except
 * around the top-level value), grammatical JSON. On anything else it answers undefined and the caller reads the body
 * with `JSON.parse`, which then accepts it (whitespace, a body `toString` must repair) or refuses it with its usual
 * message. So the scanner never has to produce an error of its own: what it accepts, `JSON.parse` accepts too and
 * reads to the same values (test/unit/capture/snapshot-scanner.test.ts checks that against `JSON.parse` on hostile
 * inputs), and what it refuses goes the old way.
 *
 * The values it does not read (nearly all of a full snapshot's bytes) are stepped over by `skip`: the native skipper
 * when it is built (src/native/json-skip.ts), else the same grammar in JavaScript here.
 */
export function scanSnapshotBody(
  json: Buffer,
  skip: SkipValue | undefined = nativeSkipValue,
): SnapshotBody | undefined {
  if (!isUtf8(json)) return undefined;
  try {
    return new Scanner(json, skip).body();
  } catch (error) {
    if (error === FALLBACK) return undefined;
    throw error;
  }
}

// Own constants, not imported bindings, so V8 folds them into the loops (json-bytes.ts).
const { BACKSLASH, COLON, COMMA, LBRACE, LBRACKET, QUOTE, RBRACE, RBRACKET } = jsonBytes;
const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const MINUS = 0x2d;
const DOT = 0x2e;
const PLUS = 0x2b;
const ZERO = 0x30;
const NINE = 0x39;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const LOWER_U = 0x75;

/** Thrown inside the scanner when the body is not one it takes; never escapes `scanSnapshotBody`. */
const FALLBACK = Symbol('fallback');

/** Container kinds on the skip stack. */
const IN_OBJECT = 1;
const IN_ARRAY = 2;

/** Bytes a string holds as they are: all but `"`, `\` and control bytes (UTF-8 is checked before the scan). */
const PLAIN = new Uint8Array(256).fill(1, SPACE);
PLAIN[QUOTE] = 0;
PLAIN[BACKSLASH] = 0;
/** What an escape's next byte may be (`"\/bfnrtu`): 1, or 2 for `u` (four hex digits follow). */
const ESCAPES = new Uint8Array(256);
for (const c of '"\\/bfnrt') ESCAPES[c.charCodeAt(0)] = 1;
ESCAPES[LOWER_U] = 2;
const HEX = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;

/** The keys capture reads, by id; any other key is `KEY_OTHER`. */
const KEY_OTHER = 0;
const KEY_NAMES = [
  '',
  'event',
  'properties',
  'api_key',
  'distinct_id',
  'token',
  '$snapshot_data',
  '$session_id',
  '$window_id',
  '$lib',
  '$snapshot_source',
  'type',
  'timestamp',
  'data',
  'source',
  'href',
  'plugin',
  'payload',
  'level',
] as const;
const [
  ,
  KEY_EVENT,
  KEY_PROPERTIES,
  KEY_API_KEY,
  KEY_DISTINCT_ID,
  KEY_TOKEN,
  KEY_SNAPSHOT_DATA,
  KEY_SESSION_ID,
  KEY_WINDOW_ID,
  KEY_LIB,
  KEY_SNAPSHOT_SOURCE,
  KEY_TYPE,
  KEY_TIMESTAMP,
  KEY_DATA,
  KEY_SOURCE,
  KEY_HREF,
  KEY_PLUGIN,
  KEY_PAYLOAD,
  KEY_LEVEL,
] = KEY_NAMES.map((_, id) => id);
const KEY_IDS = new Map<string, number>(KEY_NAMES.map((name, id) => [name, id]));
/** The key names as bytes, by length, for matching unescaped keys without making strings. */
const KEYS_BY_LENGTH: { bytes: Buffer; id: number }[][] = [];
KEY_NAMES.forEach((name, id) => {
  if (id === KEY_OTHER) return;
  const bytes = Buffer.from(name, 'latin1');
  const sameLength = KEYS_BY_LENGTH[bytes.length] ?? [];
  sameLength.push({ bytes, id });
  KEYS_BY_LENGTH[bytes.length] = sameLength;
});

/** The skeleton of an event's `data` and of its `payload`: the fields the summary reads. */
interface EventData {
  source: unknown;
  type: unknown;
  href: unknown;
  plugin: unknown;
  payload: EventPayload | undefined;
}
interface EventPayload {
  level: unknown;
  href: unknown;
}

class Scanner {
  private readonly buf: Buffer;
  private readonly end: number;
  private pos = 0;
  /** Container kinds of `skipValue`, grown as deep as a body nests. */
  private stack = new Uint8Array(64);
  /** Whether the last string `skipString` passed holds an escape. */
  private escaped = false;

  /** The body as aligned 32-bit words, for skipping long strings four bytes at a time (undefined if unaligned). */
  private readonly words: Int32Array | undefined;
  private readonly skip: SkipValue | undefined;

  constructor(buf: Buffer, skip: SkipValue | undefined) {
    this.buf = buf;
    this.skip = skip;
    this.end = buf.length;
    this.words = (buf.byteOffset & 3) === 0 ? new Int32Array(buf.buffer, buf.byteOffset, buf.length >>> 2) : undefined;
  }

  body(): SnapshotBody {
    this.skipWhitespace();
    const c = this.buf[this.pos];
    let body: SnapshotBody;
    if (c === LBRACKET) {
      const items: (SnapshotItem | undefined)[] = [];
      this.pos++;
      if (this.buf[this.pos] === RBRACKET) this.pos++;
      else {
        for (;;) {
          items.push(this.buf[this.pos] === LBRACE ? this.item(undefined) : this.skipToUndefined());
          if (this.closes(RBRACKET)) break;
        }
      }
      body = { root: 'array', rootApiKey: undefined, rootToken: undefined, items };
    } else if (c === LBRACE) {
      const root = { token: undefined as unknown };
      const item = this.item(root);
      body = { root: 'object', rootApiKey: item.apiKey, rootToken: root.token, items: [item] };
    } else {
      throw FALLBACK;
    }
    this.skipWhitespace();
    if (this.pos !== this.end) throw FALLBACK;
    return body;
  }

  private skipWhitespace(): void {
    const buf = this.buf;
    let i = this.pos;
    while (i < this.end) {
      const c = buf[i]!;
      if (c !== SPACE && c !== LF && c !== CR && c !== TAB) break;
      i++;
    }
    this.pos = i;
  }

  /** After an element or member: consumes a `,` (false) or `close` (true), refusing anything else. */
  private closes(close: number): boolean {
    const c = this.buf[this.pos];
    this.pos++;
    if (c === COMMA) return false;
    if (c === close) return true;
    throw FALLBACK;
  }

  /**
   * An object's members, each key handed to `member` with the position on its value (`member` consumes the value).
   * The position is on the `{`.
   */
  private members(member: (key: number) => void): void {
    const buf = this.buf;
    this.pos++;
    if (buf[this.pos] === RBRACE) {
      this.pos++;
      return;
    }
    for (;;) {
      if (buf[this.pos] !== QUOTE) throw FALLBACK;
      const key = this.key();
      if (buf[this.pos] !== COLON) throw FALLBACK;
      this.pos++;
      member(key);
      if (this.closes(RBRACE)) return;
    }
  }

  /** The id of the key at the position (on its `"`), which is left after the key. */
  private key(): number {
    const start = this.pos + 1;
    this.skipString();
    const end = this.pos - 1;
    const length = end - start;
    if (this.escaped) return KEY_IDS.get(this.decodeString(start, end) as string) ?? KEY_OTHER;
    const candidates = KEYS_BY_LENGTH[length];
    if (candidates === undefined) return KEY_OTHER;
    const buf = this.buf;
    for (const { bytes, id } of candidates) {
      let k = 0;
      while (k < length && buf[start + k] === bytes[k]) k++;
      if (k === length) return id;
    }
    return KEY_OTHER;
  }

  /** One item (an object); `root` receives a top-level object's `token`. */
  private item(root: { token: unknown } | undefined): SnapshotItem {
    let event: unknown;
    let apiKey: unknown;
    let distinctId: unknown;
    let properties: SnapshotProperties | undefined;
    this.members((key) => {
      if (key === KEY_EVENT) event = this.scalar();
      else if (key === KEY_API_KEY) apiKey = this.scalar();
      else if (key === KEY_DISTINCT_ID) distinctId = this.scalar();
      else if (key === KEY_PROPERTIES)
        properties = this.buf[this.pos] === LBRACE ? this.properties() : this.skipToUndefined();
      else if (key === KEY_TOKEN && root !== undefined) root.token = this.scalar();
      else this.skipValue();
    });
    return { event, apiKey, distinctId, properties };
  }

  private properties(): SnapshotProperties {
    const props = {
      token: undefined as unknown,
      sessionId: undefined as unknown,
      windowId: undefined as unknown,
      distinctId: undefined as unknown,
      lib: undefined as unknown,
      snapshotSource: undefined as unknown,
      data: undefined as SnapshotElement[] | undefined,
    };
    this.members((key) => {
      if (key === KEY_SNAPSHOT_DATA)
        props.data = this.buf[this.pos] === LBRACKET ? this.events() : this.skipToUndefined();
      else if (key === KEY_SESSION_ID) props.sessionId = this.scalar();
      else if (key === KEY_WINDOW_ID) props.windowId = this.scalar();
      else if (key === KEY_TOKEN) props.token = this.scalar();
      else if (key === KEY_DISTINCT_ID) props.distinctId = this.scalar();
      else if (key === KEY_LIB) props.lib = this.scalar();
      else if (key === KEY_SNAPSHOT_SOURCE) props.snapshotSource = this.scalar();
      else this.skipValue();
    });
    return props;
  }

  /** The elements of `$snapshot_data` (the position is on its `[`). */
  private events(): SnapshotElement[] {
    const buf = this.buf;
    const events: SnapshotElement[] = [];
    this.pos++;
    if (buf[this.pos] === RBRACKET) {
      this.pos++;
      return events;
    }
    for (;;) {
      const start = this.pos;
      const event = buf[start] === LBRACE ? this.event() : this.skipToNull();
      events.push({ event, raw: buf.subarray(start, this.pos) });
      if (this.closes(RBRACKET)) return events;
    }
  }

  private event(): { type: unknown; timestamp: unknown; data: unknown } {
    const event = { type: undefined as unknown, timestamp: undefined as unknown, data: undefined as unknown };
    this.members((key) => {
      if (key === KEY_TYPE) event.type = this.scalar();
      else if (key === KEY_TIMESTAMP) event.timestamp = this.scalar();
      else if (key === KEY_DATA) event.data = this.data();
      else this.skipValue();
    });
    return event;
  }

  /**
   * An event's `data`: an object's summary fields, an empty object for an array (whose named fields all read
   * undefined), or undefined for anything else (which has none).
   */
  private data(): EventData | undefined {
    const data: EventData = {
      source: undefined,
      type: undefined,
      href: undefined,
      plugin: undefined,
      payload: undefined,
    };
    return this.fields(data, (key) => {
      if (key === KEY_SOURCE) data.source = this.scalar();
      else if (key === KEY_TYPE) data.type = this.scalar();
      else if (key === KEY_HREF) data.href = this.scalar();
      else if (key === KEY_PLUGIN) data.plugin = this.scalar();
      else if (key === KEY_PAYLOAD) data.payload = this.payload();
      else this.skipValue();
    });
  }

  /** `data.payload`, read as `data` is. */
  private payload(): EventPayload | undefined {
    const payload: EventPayload = { level: undefined, href: undefined };
    return this.fields(payload, (key) => {
      if (key === KEY_LEVEL) payload.level = this.scalar();
      else if (key === KEY_HREF) payload.href = this.scalar();
      else this.skipValue();
    });
  }

  /** `into` filled by `member` from the object at the position; `{}` for an array, undefined for anything else. */
  private fields<T extends object>(into: T, member: (key: number) => void): T | undefined {
    const c = this.buf[this.pos];
    if (c === LBRACE) {
      this.members(member);
      return into;
    }
    this.skipValue();
    return c === LBRACKET ? ({} as T) : undefined;
  }

  private skipToUndefined(): undefined {
    this.skipValue();
    return undefined;
  }

  private skipToNull(): null {
    this.skipValue();
    return null;
  }

  /** A value read for itself: a string or number as `JSON.parse` gives it, a literal, or `CONTAINER`. */
  private scalar(): unknown {
    const buf = this.buf;
    const start = this.pos;
    const c = buf[start];
    if (c === QUOTE) {
      this.skipString();
      return this.decodeString(start + 1, this.pos - 1);
    }
    this.skipValue();
    if (c === LBRACE || c === LBRACKET) return CONTAINER;
    const text = buf.toString('latin1', start, this.pos);
    if (text === 'true') return true;
    if (text === 'false') return false;
    if (text === 'null') return null;
    return Number(text);
  }

  /** The string between `start` and `end` (inside its quotes), escapes decoded when `skipString` saw one. */
  private decodeString(start: number, end: number): string {
    return this.escaped
      ? (JSON.parse(this.buf.toString('utf8', start - 1, end + 1)) as string)
      : this.buf.toString('utf8', start, end);
  }

  /** Steps over the string whose `"` is at the position, checking its escapes and that it holds no control byte. */
  private skipString(): void {
    const buf = this.buf;
    let i = this.pos + 1;
    let escaped = false;
    const words = this.words;
    for (;;) {
      // Past the end `buf[i]` is undefined, which is not plain either: no bounds check in the loop.
      while ((i & 3) !== 0 && PLAIN[buf[i]!] === 1) i++;
      if (words !== undefined && (i & 3) === 0) i = plainWordsFrom(words, i);
      while (PLAIN[buf[i]!] === 1) i++;
      const c = buf[i];
      if (c === QUOTE) break;
      if (c !== BACKSLASH) throw FALLBACK; // a control byte, or the end of the body
      const kind = ESCAPES[buf[i + 1] ?? 0]!;
      if (kind === 0) throw FALLBACK;
      if (kind === 2) {
        if (!(HEX[buf[i + 2] ?? 0]! & HEX[buf[i + 3] ?? 0]! & HEX[buf[i + 4] ?? 0]! & HEX[buf[i + 5] ?? 0]!)) {
          throw FALLBACK;
        }
        i += 6;
      } else {
        i += 2;
      }
      escaped = true;
    }
    this.pos = i + 1;
    this.escaped = escaped;
  }

  /** Steps over the number at the position, checking JSON's number grammar. */
  private skipNumber(): void {
    const buf = this.buf;
    let i = this.pos;
    if (buf[i] === MINUS) i++;
    if (buf[i] === ZERO) i++;
    else i = this.digits(i);
    if (buf[i] === DOT) i = this.digits(i + 1);
    const e = buf[i];
    if (e === LOWER_E || e === UPPER_E) {
      i++;
      const sign = buf[i];
      if (sign === PLUS || sign === MINUS) i++;
      i = this.digits(i);
    }
    this.pos = i;
  }

  /** Where the run of at least one digit starting at `i` ends. */
  private digits(i: number): number {
    const buf = this.buf;
    const start = i;
    for (;;) {
      const c = buf[i];
      if (c === undefined || c < ZERO || c > NINE) break;
      i++;
    }
    if (i === start) throw FALLBACK;
    return i;
  }

  /** Steps over `literal` (true, false, null) at the position. */
  private skipLiteral(literal: Buffer): void {
    const buf = this.buf;
    const at = this.pos;
    for (let k = 0; k < literal.length; k++) if (buf[at + k] !== literal[k]) throw FALLBACK;
    this.pos = at + literal.length;
  }

  /**
   * Steps over the value at the position, validating it: the loop every byte of the events goes through. Nesting is
   * followed on an explicit stack, so no depth overflows it.
   */
  private skipValue(): void {
    const buf = this.buf;
    const first = buf[this.pos];
    // Containers go native (one call is worth it there; a scalar is quicker stepped over here).
    if (this.skip !== undefined && (first === LBRACE || first === LBRACKET)) {
      const end = this.skip(buf, this.pos);
      if (end < 0) throw FALLBACK;
      this.pos = end;
      return;
    }
    let depth = 0;
    let stack = this.stack;
    for (;;) {
      // A value is expected at the position.
      const c = buf[this.pos];
      if (c === QUOTE) this.skipString();
      else if (c === LBRACE || c === LBRACKET) {
        this.pos++;
        const close = c === LBRACE ? RBRACE : RBRACKET;
        if (buf[this.pos] === close) this.pos++;
        else {
          if (depth === stack.length) {
            const grown = new Uint8Array(stack.length * 2);
            grown.set(stack);
            this.stack = stack = grown;
          }
          stack[depth++] = c === LBRACE ? IN_OBJECT : IN_ARRAY;
          if (c === LBRACE) this.memberKey();
          continue;
        }
      } else if (c === MINUS || (c !== undefined && c >= ZERO && c <= NINE)) this.skipNumber();
      else if (c === LITERAL_TRUE[0]) this.skipLiteral(LITERAL_TRUE);
      else if (c === LITERAL_FALSE[0]) this.skipLiteral(LITERAL_FALSE);
      else if (c === LITERAL_NULL[0]) this.skipLiteral(LITERAL_NULL);
      else throw FALLBACK;
      // After a value: close what ends here, until a `,` calls for the next value.
      for (;;) {
        if (depth === 0) return;
        const after = buf[this.pos];
        const kind = stack[depth - 1];
        if (after === COMMA) {
          this.pos++;
          if (kind === IN_OBJECT) this.memberKey();
          break;
        }
        if (after !== (kind === IN_OBJECT ? RBRACE : RBRACKET)) throw FALLBACK;
        this.pos++;
        depth--;
      }
    }
  }

  /** Steps over `"key":` of a member whose value `skipValue` does not read. */
  private memberKey(): void {
    if (this.buf[this.pos] !== QUOTE) throw FALLBACK;
    this.skipString();
    if (this.buf[this.pos] !== COLON) throw FALLBACK;
    this.pos++;
  }
}

/**
 * Where the run of whole words free of `"`, `\` and control bytes, starting at the word-aligned byte `i`, ends (four
 * bytes per step: long strings, text and CSS and data URLs, are most of a full snapshot's bytes). Byte tests on a word
 * (`x - 0x01010101 & ~x & 0x80808080` is non-zero iff some byte of x is 0): exact for the first flagged byte, which is
 * all this needs, since the byte loop after it decides.
 */
function plainWordsFrom(words: Int32Array, i: number): number {
  let w = i >>> 2;
  const end = words.length;
  while (w < end) {
    const v = words[w]!;
    const quote = v ^ 0x22222222;
    const backslash = v ^ 0x5c5c5c5c;
    const special = ((v - 0x20202020) & ~v) | ((quote - 0x01010101) & ~quote) | ((backslash - 0x01010101) & ~backslash);
    if ((special & 0x80808080) !== 0) break;
    w++;
  }
  return w << 2;
}

const LITERAL_TRUE = Buffer.from('true');
const LITERAL_FALSE = Buffer.from('false');
const LITERAL_NULL = Buffer.from('null');

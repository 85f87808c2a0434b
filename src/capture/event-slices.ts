import { isUtf8 } from 'node:buffer';
import * as jsonBytes from './json-bytes.ts';

/**
 * Where each rrweb event of a `/s/` body sits in the body's bytes, so capture can copy an event's bytes into its JSONL
 * line instead of re-serialising the parsed event (`JSON.stringify` per event was the largest cost of capture after
 * `JSON.parse` itself).
 *
 * The scan runs only on a body that `JSON.parse` has just accepted, so it checks no grammar: it follows strings
 * (`"`, `\` escapes) and bracket depth, and reads the few keys it needs the way `JSON.parse` does (escapes decoded,
 * the last of duplicate keys wins). It mirrors `parseSnapshotRequest`: the items are the elements of a top-level
 * array, or the top-level object itself; an item's events are the elements of `properties.$snapshot_data`.
 *
 * An element's bytes are usable as its line only when they are compact, i.e. hold no whitespace outside strings (a
 * raw newline would split the JSONL line; posthog-js bodies, made by `JSON.stringify`, never have any). The bytes then
 * parse to exactly the value `JSON.parse` gave for the element, since they are the same text. A body that is not valid
 * UTF-8 is not sliced at all: `toString('utf8')` replaced its bad bytes before `JSON.parse` saw them.
 */

// Own constants, not imported bindings, so V8 folds them into the loops (json-bytes.ts).
const { BACKSLASH, COLON, COMMA, LBRACE, LBRACKET, QUOTE, RBRACE, RBRACKET } = jsonBytes;

/** Anything at or below this outside a string is whitespace, in a valid JSON text. */
const SPACE = 0x20;

/** Marks an element that holds whitespace outside its strings: its bytes are not used. */
export const NOT_COMPACT = -1;

/**
 * Per item (in `parseSnapshotRequest`'s order), the `[start, end)` byte offsets of each `$snapshot_data` element as
 * a flat array `[start0, end0, start1, end1, ...]` (`start = NOT_COMPACT` for an element that is not compact), or
 * undefined when the item has no `$snapshot_data` array. Undefined for a body that is not valid UTF-8.
 */
export type EventSlices = (number[] | undefined)[] | undefined;

class Scanner {
  private readonly buf: Buffer;
  private readonly end: number;
  pos = 0;

  constructor(buf: Buffer) {
    this.buf = buf;
    this.end = buf.length;
  }

  private fail(): never {
    throw new Error(`event-slices: unexpected JSON at byte ${this.pos}`);
  }

  /** The next byte that is not whitespace (the position is left on it). */
  peek(): number {
    const buf = this.buf;
    let k = this.pos;
    while (k < this.end && buf[k]! <= SPACE) k++;
    this.pos = k;
    if (k >= this.end) this.fail();
    return buf[k]!;
  }

  expect(byte: number): void {
    if (this.peek() !== byte) this.fail();
    this.pos++;
  }

  /** Skips a string at the position (on its opening quote); returns the offset just past its closing quote. */
  private skipString(): number {
    const buf = this.buf;
    const end = this.end;
    let k = this.pos + 1;
    while (k < end) {
      const c = buf[k++]!;
      if (c === QUOTE) {
        this.pos = k;
        return k;
      }
      if (c === BACKSLASH) k++;
    }
    return this.fail();
  }

  /**
   * Reads a key and its colon. The result equals an ASCII name exactly when `JSON.parse` reads the key as that name:
   * escaped keys are decoded, others are read as latin1 (a non-ASCII key then holds characters above U+007F, as its
   * decoded form does, and equals no ASCII name either way).
   */
  key(): string {
    if (this.peek() !== QUOTE) this.fail();
    const start = this.pos;
    const end = this.skipString();
    let key = this.buf.toString('latin1', start + 1, end - 1);
    if (key.includes('\\')) key = JSON.parse(this.buf.toString('utf8', start, end)) as string;
    this.expect(COLON);
    return key;
  }

  /**
   * Skips one value at the position. Returns its end offset (never 0), negated when the value holds whitespace
   * outside its strings (only an object or array can).
   */
  skipValue(): number {
    const buf = this.buf;
    const end = this.end;
    const first = this.peek();
    let k = this.pos;
    if (first === QUOTE) return this.skipString();
    if (first !== LBRACE && first !== LBRACKET) {
      // number, true, false, null: up to the next delimiter
      while (k < end) {
        const c = buf[k]!;
        if (c === COMMA || c === RBRACE || c === RBRACKET || c <= SPACE) break;
        k++;
      }
      this.pos = k;
      return k;
    }
    let depth = 0;
    let space = false;
    while (k < end) {
      const c = buf[k++]!;
      if (c === QUOTE) {
        while (k < end) {
          const d = buf[k++]!;
          if (d === QUOTE) break;
          if (d === BACKSLASH) k++;
        }
      } else if (c === LBRACE || c === LBRACKET) depth++;
      else if (c === RBRACE || c === RBRACKET) {
        if (--depth === 0) {
          this.pos = k;
          return space ? -k : k;
        }
      } else if (c <= SPACE) space = true;
    }
    return this.fail();
  }

  /** Calls `onMember` for each key of the object at the position; `onMember` must consume the value. */
  object(onMember: (key: string) => void): void {
    this.expect(LBRACE);
    if (this.peek() === RBRACE) {
      this.pos++;
      return;
    }
    for (;;) {
      onMember(this.key());
      const next = this.peek();
      this.pos++;
      if (next === RBRACE) return;
      if (next !== COMMA) this.fail();
    }
  }

  /** The flat `[start, end, ...]` ranges of the elements of the array at the position. */
  elements(): number[] {
    const ranges: number[] = [];
    this.expect(LBRACKET);
    if (this.peek() === RBRACKET) {
      this.pos++;
      return ranges;
    }
    for (;;) {
      const start = this.pos;
      const end = this.skipValue();
      if (end < 0) ranges.push(NOT_COMPACT, -end);
      else ranges.push(start, end);
      const next = this.peek();
      this.pos++;
      if (next === RBRACKET) return ranges;
      if (next !== COMMA) this.fail();
    }
  }

  /** The `$snapshot_data` element ranges of the item at the position (consumed), or undefined. */
  item(): number[] | undefined {
    if (this.peek() !== LBRACE) {
      this.skipValue();
      return undefined;
    }
    let found: number[] | undefined;
    this.object((itemKey) => {
      if (itemKey !== 'properties') {
        this.skipValue();
        return;
      }
      found = undefined; // the last "properties" wins, whatever it holds
      if (this.peek() !== LBRACE) {
        this.skipValue();
        return;
      }
      this.object((propertyKey) => {
        if (propertyKey === '$snapshot_data' && this.peek() === LBRACKET) found = this.elements();
        else {
          if (propertyKey === '$snapshot_data') found = undefined;
          this.skipValue();
        }
      });
    });
    return found;
  }
}

/**
 * Locates the events of a body that `JSON.parse` accepted (see the module comment). Throws only if the body is not
 * valid JSON after all; callers treat that as "no slices".
 */
export function locateSnapshotEvents(json: Buffer): EventSlices {
  if (!isUtf8(json)) return undefined;
  const scanner = new Scanner(json);
  const items: (number[] | undefined)[] = [];
  if (scanner.peek() === LBRACKET) {
    scanner.pos++;
    if (scanner.peek() === RBRACKET) return items;
    for (;;) {
      items.push(scanner.item());
      const next = scanner.peek();
      scanner.pos++;
      if (next === RBRACKET) break;
      if (next !== COMMA) throw new Error('event-slices: unexpected JSON in the top-level array');
    }
  } else items.push(scanner.item());
  return items;
}

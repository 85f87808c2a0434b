import { describe, expect, it } from 'vitest';
import { nativeSkipValue } from '../../../src/native/json-skip.ts';

// The addon on byte buffers, alone (test/unit/capture/snapshot-scanner.test.ts compares whole bodies with JSON.parse).
const skip = nativeSkipValue!;
const end = (text: string, at = 0) => skip(Buffer.from(text), at);

describe('the native JSON skipper', () => {
  it('is built (scripts/setup runs scripts/build-native)', () => {
    expect(nativeSkipValue).toBeTypeOf('function');
  });

  it('answers where the value at a position ends, and nothing past it', () => {
    const value = '{"a":[1,-2.5e+3,true,false,null,"x\\u00e9\\n"],"b":{}}';
    expect(end(`${value}tail`)).toBe(value.length);
    expect(end('[[],{},""],[', 0)).toBe(10);
    expect(end('x:[1,2]', 2)).toBe(7);
    expect(end('"a"', 0)).toBe(3);
    expect(end('0,', 0)).toBe(1);
  });

  it.each([
    '[1,]',
    '{"a":1,}',
    '{"a"}',
    '{1:2}',
    '[1 ]',
    '[01]',
    '[1.]',
    '[.5]',
    '[1e]',
    '[-]',
    '[tru]',
    '["\\x"]',
    '["\\u12g4"]',
    '["a\tb"]',
    '["\u0001"]',
    '["abc',
    '[[[',
    '{"a":',
    '',
  ])('refuses %j', (text) => {
    expect(end(text)).toBe(-1);
  });

  it('finds quotes, escapes and control bytes at every offset of a long string', () => {
    const text = 'x'.repeat(70);
    for (let at = 0; at < 40; at++) {
      const cut = (insert: string) => `["${text.slice(0, at)}${insert}${text.slice(at)}"]`;
      expect(end(cut('\\"'))).toBe(cut('\\"').length);
      expect(end(cut('é'))).toBe(Buffer.byteLength(cut('é')));
      expect(end(cut('\u001f'))).toBe(-1);
      expect(end(cut('\\q'))).toBe(-1);
      // A string cut short at every length, inside and after the 16-byte steps.
      expect(end(`["${text.slice(0, at)}`)).toBe(-1);
    }
  });

  it('follows 100 000 levels of nesting without a native stack of that depth', () => {
    const depth = 100_000;
    expect(end(`${'[{"a":'.repeat(depth)}1${'}]'.repeat(depth)}`)).toBe(depth * 8 + 1);
    expect(end(`${'['.repeat(depth)}${']'.repeat(depth - 1)}`)).toBe(-1);
  });

  it('answers -1 for a position outside the buffer or arguments of the wrong kind', () => {
    expect(end('[]', 2)).toBe(-1);
    expect(end('[]', -1)).toBe(-1);
    expect((skip as (...args: unknown[]) => number)('[]', 0)).toBe(-1);
    expect((skip as (...args: unknown[]) => number)(Buffer.from('[]'))).toBe(-1);
  });
});

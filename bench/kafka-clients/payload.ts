/**
 * Message corpus for the client bench: values are JSONL lines `[window_id, rrweb-like event]` (the uncompressed form of
 * the recordings payload, DESIGN §3.2), cut to an exact size; keys are session ids. Deterministic: a seeded PRNG, so
 * every client sends the same bytes.
 */
import { compressFrameSync } from 'lz4-napi';
import { prng } from '../shared/prng.ts';

export interface Corpus {
  readonly valueBytes: number;
  readonly sessions: readonly string[];
  readonly values: readonly Buffer[];
  /** Uncompressed / LZ4-frame-compressed size of one value, averaged over the pool. */
  readonly lz4Ratio: number;
  /** Value and key of message `i` (a fixed pseudo-random pick from the pools). */
  message(i: number): { readonly key: string; readonly value: Buffer; readonly team: string };
}

const WORDS = (
  'div span button a img input label form section header footer nav main article aside ul li p h1 h2 svg path ' +
  'container wrapper row col flex grid item active hidden disabled selected primary secondary btn modal overlay ' +
  'dropdown menu toggle card title subtitle body price cart checkout search results filter sort page next previous ' +
  'account settings profile logout login email password submit cancel save delete edit close open loading error ' +
  'success warning info tooltip badge avatar icon chevron arrow left right top bottom small large medium dark light'
).split(' ');

function hex(rand: () => number, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += Math.floor(rand() * 16).toString(16);
  return out;
}

function uuid(rand: () => number): string {
  return `${hex(rand, 8)}-${hex(rand, 4)}-4${hex(rand, 3)}-a${hex(rand, 3)}-${hex(rand, 12)}`;
}

function words(rand: () => number, count: number): string {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(WORDS[Math.floor(rand() * WORDS.length)]!);
  return out.join(' ');
}

function event(rand: () => number, timestamp: number): object {
  const id = () => Math.floor(rand() * 5000);
  const kind = rand();
  if (kind < 0.45) {
    const positions = Array.from({ length: 1 + Math.floor(rand() * 6) }, (_, k) => ({
      x: Math.floor(rand() * 1920),
      y: Math.floor(rand() * 1080),
      id: id(),
      timeOffset: -50 * k,
    }));
    return { type: 3, data: { source: 1, positions }, timestamp };
  }
  if (kind < 0.8) {
    const adds = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => ({
      parentId: id(),
      nextId: rand() < 0.5 ? null : id(),
      node: {
        type: 2,
        tagName: WORDS[Math.floor(rand() * 20)],
        attributes: { class: words(rand, 1 + Math.floor(rand() * 4)), 'data-testid': words(rand, 1) },
        childNodes: [{ type: 3, textContent: words(rand, 2 + Math.floor(rand() * 8)), id: id() }],
        id: id(),
      },
    }));
    const attributes = [{ id: id(), attributes: { class: words(rand, 3) } }];
    return {
      type: 3,
      data: { source: 0, texts: [], attributes, removes: [{ parentId: id(), id: id() }], adds },
      timestamp,
    };
  }
  if (kind < 0.9)
    return { type: 3, data: { source: 2, type: 2, id: id(), x: Math.floor(rand() * 1920), y: 400 }, timestamp };
  if (kind < 0.97) return { type: 3, data: { source: 3, id: id(), x: 0, y: Math.floor(rand() * 20000) }, timestamp };
  return { type: 3, data: { source: 5, text: words(rand, 3), isChecked: false, id: id() }, timestamp };
}

function value(rand: () => number, bytes: number, windowId: string): Buffer {
  const lines: string[] = [];
  let size = 0;
  let timestamp = 1_763_800_000_000 + Math.floor(rand() * 1e9);
  while (size < bytes) {
    timestamp += Math.floor(rand() * 200);
    const line = `${JSON.stringify([windowId, event(rand, timestamp)])}\n`;
    lines.push(line);
    size += line.length;
  }
  return Buffer.from(lines.join(''), 'utf8').subarray(0, bytes);
}

export function makeCorpus(valueBytes: number, distinctValues: number, sessionCount: number, seed: number): Corpus {
  const rand = prng(seed);
  const sessions = Array.from({ length: sessionCount }, () => uuid(rand));
  const windows = Array.from({ length: 16 }, () => uuid(rand));
  const values = Array.from({ length: distinctValues }, (_, i) =>
    value(rand, valueBytes, windows[i % windows.length]!),
  );
  const compressed = values.reduce((sum, v) => sum + compressFrameSync(v).length, 0);
  const pick = prng(seed ^ 0x5eed);
  const picks = Array.from({ length: 65_536 }, () => [
    Math.floor(pick() * sessionCount),
    Math.floor(pick() * distinctValues),
  ]);
  return {
    valueBytes,
    sessions,
    values,
    lz4Ratio: (valueBytes * distinctValues) / compressed,
    message(i) {
      const [s, v] = picks[i % picks.length]!;
      return { key: sessions[s!]!, value: values[v!]!, team: String(1 + (s! % 20)) };
    },
  };
}

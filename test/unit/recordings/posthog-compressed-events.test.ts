import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { inflatePosthogEvent } from '../../../src/recordings/posthog-compressed-events.ts';

const squeeze = (value: unknown) => gzipSync(JSON.stringify(value)).toString('latin1');

describe('posthog-js compressed events (cv 2024-10)', () => {
  it('restores a full snapshot and a mutation to plain rrweb', () => {
    const snapshot = {
      type: 2,
      timestamp: 1,
      data: { node: { id: 1, type: 0, childNodes: [] }, initialOffset: { top: 0, left: 0 } },
    };
    const mutation = {
      type: 3,
      timestamp: 2,
      data: {
        source: 0,
        texts: [],
        attributes: [{ id: 3, attributes: { a: 'b' } }],
        removes: [],
        adds: [{ parentId: 1, nextId: null, node: { id: 4 } }],
      },
    };
    expect(inflatePosthogEvent({ ...snapshot, cv: '2024-10', data: squeeze(snapshot.data) })).toEqual(snapshot);
    const packed = {
      ...mutation,
      cv: '2024-10',
      data: {
        source: 0,
        texts: squeeze([]),
        attributes: squeeze(mutation.data.attributes),
        removes: squeeze([]),
        adds: squeeze(mutation.data.adds),
      },
    };
    expect(inflatePosthogEvent(packed)).toEqual(mutation);
  });

  it('leaves plain events untouched and rejects damaged compressed fields', () => {
    const plain = { type: 3, timestamp: 1, data: { source: 1, positions: [] } };
    expect(inflatePosthogEvent(plain)).toBe(plain);
    expect(() => inflatePosthogEvent({ type: 2, timestamp: 1, cv: '2024-10', data: 'not gzip' })).toThrow();
  });
});

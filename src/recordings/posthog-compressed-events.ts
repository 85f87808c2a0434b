import { gunzipSync } from 'node:zlib';

/**
 * posthog-js (with `compress_events`, its default) shrinks big rrweb fields before upload and marks the event with
 * `cv: '2024-10'`: a full snapshot's `data`, and a mutation's or style-sheet rule's `texts`, `attributes`, `removes`,
 * `adds` become gzip bytes stored one byte per character. `type`, `timestamp` and `data.source` stay plain, so the
 * pipeline stores such events as they are; this restores the plain rrweb event for playback.
 */
export const POSTHOG_COMPRESSION_VERSION = '2024-10';
const compressedMutationFields = ['texts', 'attributes', 'removes', 'adds'] as const;

function inflateField(value: unknown): unknown {
  return typeof value === 'string' ? JSON.parse(gunzipSync(Buffer.from(value, 'latin1')).toString('utf8')) : value;
}

export function inflatePosthogEvent<T extends { type?: unknown; cv?: unknown; data?: unknown }>(event: T): T {
  if (event.cv !== POSTHOG_COMPRESSION_VERSION) return event;
  const { cv: _cv, ...plain } = event;
  if (plain.type === 2) return { ...plain, data: inflateField(plain.data) } as T;
  if (plain.type === 3 && typeof plain.data === 'object' && plain.data !== null) {
    const data: Record<string, unknown> = { ...(plain.data as Record<string, unknown>) };
    for (const key of compressedMutationFields) {
      if (key in data) data[key] = inflateField(data[key]);
    }
    return { ...plain, data } as T;
  }
  return plain as T;
}

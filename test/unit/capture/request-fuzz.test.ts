import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildRecordingMessages } from '../../../src/capture/build-messages.ts';
import { parseSnapshotRequest } from '../../../src/capture/parse-snapshots.ts';
import { isReplayError, ReplayError } from '../../../src/errors/index.ts';
import { decodeRecordingMessage } from '../../../src/recordings/message-codec.ts';
import { sampleTeam } from '../../support/teams.ts';
import { mutated, truncated, uploadOf } from './fake-upload.ts';

const team = sampleTeam;

/** Everything capture does to a body before producing; it must either yield messages or throw a catalogue error. */
async function ingest(bytes: Buffer, contentType?: string): Promise<number> {
  const { json } = await uploadOf(bytes, {
    headers: contentType ? { 'content-type': contentType } : {},
    authenticate: async (token) => {
      if (token !== team.apiToken) throw new ReplayError('invalid_token', 'unknown project token');
    },
  });
  const request = parseSnapshotRequest(json);
  let messages = 0;
  for (const session of request.sessions) {
    for (const record of buildRecordingMessages(
      { ...session, team },
      { maxMessageBytes: 1024 * 1024, requestId: 'r', capturedAt: 1 },
    )) {
      expect(decodeRecordingMessage(record.value).header.sessionId).toBe(session.sessionId);
      messages++;
    }
  }
  return messages;
}

const validBody = JSON.stringify([
  {
    event: '$snapshot',
    properties: {
      token: 'phc_x',
      $session_id: 'abc-123',
      $window_id: 'w-1',
      $snapshot_data: [
        { type: 4, timestamp: 1_763_800_000_000, data: { href: 'https://a/' } },
        { type: 3, timestamp: 1_763_800_000_100, data: { source: 2, type: 2 } },
      ],
    },
  },
]);

async function onlyCatalogueErrors(bytes: Buffer, contentType?: string): Promise<void> {
  try {
    await ingest(bytes, contentType);
  } catch (error) {
    if (!isReplayError(error)) throw error;
    expect(error.httpStatus).toBeGreaterThanOrEqual(400);
    expect(error.httpStatus).toBeLessThan(500);
  }
}

describe('request decoding under random and mutated input', () => {
  it('accepts the valid body it mutates', async () => {
    expect(await ingest(gzipSync(validBody))).toBe(1);
  });

  it('mutated gzip and JSON bodies only ever end in a catalogue error or valid messages', async () => {
    const gz = gzipSync(validBody);
    const plain = Buffer.from(validBody);
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated(gz), mutated(plain), truncated(gz), truncated(plain)), (bytes) =>
        onlyCatalogueErrors(bytes),
      ),
      { numRuns: 1500 },
    );
  });

  it('arbitrary JSON values and form bodies only ever end in a catalogue error or valid messages', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 5 }), async (value) => {
        await onlyCatalogueErrors(Buffer.from(JSON.stringify(value)));
        await onlyCatalogueErrors(
          Buffer.from(`data=${encodeURIComponent(Buffer.from(JSON.stringify(value)).toString('base64'))}`),
          'application/x-www-form-urlencoded',
        );
      }),
      { numRuns: 1500 },
    );
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), (bytes) => onlyCatalogueErrors(Buffer.from(bytes))),
      { numRuns: 1500 },
    );
  });
});

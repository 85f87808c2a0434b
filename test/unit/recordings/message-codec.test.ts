import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compressLz4Frame, decompressLz4Frames } from '../../../src/codec/lz4-frames.ts';
import { isReplayError } from '../../../src/errors/index.ts';
import {
  decodeRecordingMessage,
  encodeLz4RecordingMessage,
  encodeRecordingMessage,
} from '../../../src/recordings/message-codec.ts';
import { sampleHeader } from '../../support/recordings.ts';

const jsonl = Buffer.from('["w1",{"type":4,"timestamp":1,"data":{"href":"https://example.com/"}}]\n');

function decodeCode(bytes: Buffer): string {
  try {
    decodeRecordingMessage(bytes);
    return 'ok';
  } catch (error) {
    if (isReplayError(error) && error.errorClass === 'poison') return error.code;
    throw error;
  }
}

describe('recordings message envelope (byte-level codec)', () => {
  it('round-trips header and payload, with the payload a zero-copy view', () => {
    const header = sampleHeader();
    const payload = compressLz4Frame(jsonl);
    const bytes = encodeRecordingMessage(header, payload);
    expect(bytes.subarray(0, 5)).toEqual(Buffer.from([0x52, 0x50, 0x4c, 0x4d, 2]));
    const decoded = decodeRecordingMessage(bytes);
    expect(decoded.header).toEqual(header);
    expect(decoded.payload.equals(payload)).toBe(true);
    expect(decoded.payload.buffer).toBe(bytes.buffer);
    expect(decompressLz4Frames(decoded.payload).equals(jsonl)).toBe(true);
  });

  it('compresses straight behind the envelope to the same bytes as compressing first', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 20_000 }), (bytes) => {
        const data = Buffer.from(bytes);
        const direct = encodeLz4RecordingMessage(sampleHeader(), data);
        expect(direct.equals(encodeRecordingMessage(sampleHeader(), compressLz4Frame(data)))).toBe(true);
        expect(decompressLz4Frames(decodeRecordingMessage(direct).payload).equals(data)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('rejects every truncation with message_truncated or a header error, never a crash', () => {
    const bytes = encodeRecordingMessage(sampleHeader(), compressLz4Frame(jsonl));
    const headerEnd = bytes.readUInt32BE(6) + 18;
    for (let cut = 0; cut < headerEnd + 1; cut++) {
      expect(['message_truncated', 'message_bad_magic']).toContain(decodeCode(bytes.subarray(0, cut)));
    }
    // A payload cut short fails its checksum.
    for (let cut = headerEnd + 1; cut < bytes.length; cut++) {
      expect(decodeCode(bytes.subarray(0, cut))).toBe('payload_corrupt');
    }
  });

  it('still reads version 1 (no payload CRC): there a payload cut short fails the frame decoder', () => {
    const v2 = encodeRecordingMessage(sampleHeader(), compressLz4Frame(jsonl));
    const headerEnd = v2.readUInt32BE(6) + 14;
    const bytes = Buffer.concat([v2.subarray(0, headerEnd), v2.subarray(headerEnd + 4)]);
    bytes[4] = 1;
    const decoded = decodeRecordingMessage(bytes);
    expect(decoded.header).toEqual(sampleHeader());
    expect(decompressLz4Frames(decoded.payload).equals(jsonl)).toBe(true);
    for (let cut = headerEnd + 1; cut < bytes.length; cut++) {
      const { payload } = decodeRecordingMessage(bytes.subarray(0, cut));
      expect(() => decompressLz4Frames(payload)).toThrow(expect.objectContaining({ code: 'payload_corrupt' }));
    }
  });

  it('rejects a wrong magic and an unknown version with their own codes', () => {
    const bytes = encodeRecordingMessage(sampleHeader(), compressLz4Frame(jsonl));
    const wrongVersion = Buffer.from(bytes);
    wrongVersion[4] = 3;
    expect(decodeCode(wrongVersion)).toBe('message_unsupported_version');
    expect(decodeCode(Buffer.from(`{"json":"not an envelope"}`))).toBe('message_bad_magic');
  });

  it('detects a flipped bit in the header by checksum and in the payload by the frame checksum', () => {
    const bytes = encodeRecordingMessage(sampleHeader(), compressLz4Frame(jsonl));
    const headerLength = bytes.readUInt32BE(6);
    const damagedHeader = Buffer.from(bytes);
    damagedHeader[10 + Math.floor(headerLength / 2)]! ^= 0x04;
    expect(decodeCode(damagedHeader)).toBe('message_header_corrupt');

    const payloadStart = 18 + headerLength;
    for (let at = payloadStart - 4; at < bytes.length; at++) {
      const damaged = Buffer.from(bytes);
      damaged[at]! ^= 0x01;
      expect(decodeCode(damaged), `flip at ${at}`).toBe('payload_corrupt');
    }
  });

  it('rejects headers with missing or ill-typed fields as message_header_invalid', () => {
    const payload = compressLz4Frame(jsonl);
    for (const bad of [
      { teamId: 0 },
      { sessionId: '' },
      { retention: '2w' },
      { eventCount: -1 },
      { part: 1, parts: 1 },
      { firstTimestamp: 5, lastTimestamp: 4 },
      { activeIntervals: [[3, 2]] },
    ]) {
      const bytes = encodeRecordingMessage(sampleHeader(bad as never), payload);
      expect(decodeCode(bytes), JSON.stringify(bad)).toBe('message_header_invalid');
    }
  });

  it('never throws anything but a decode error on random or mutated bytes', () => {
    const valid = encodeRecordingMessage(sampleHeader(), compressLz4Frame(jsonl));
    const mutated = fc
      .array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 })
      .map((edits) => {
        const copy = Buffer.from(valid);
        for (const [at, value] of edits) copy[at] = value;
        return copy;
      });
    const random = fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a));
    fc.assert(
      fc.property(fc.oneof(mutated, random), (bytes) => {
        try {
          const { payload } = decodeRecordingMessage(bytes);
          decompressLz4Frames(payload);
        } catch (error) {
          // Damage is always poison with a catalogue code: never an unclassified error.
          expect(isReplayError(error) && error.errorClass === 'poison', String(error)).toBe(true);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

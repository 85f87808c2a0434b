import type { RecordingMessageHeader } from '../../src/recordings/message-codec.ts';

/** A valid header with every field set; tests override what they exercise. */
export function sampleHeader(overrides: Partial<RecordingMessageHeader> = {}): RecordingMessageHeader {
  return {
    teamId: 7,
    sessionId: '0192f0a1-aaaa-7bbb-8ccc-123456789abc',
    distinctId: 'user-1',
    windowIds: ['w1'],
    snapshotSource: 'web',
    snapshotLibrary: 'web',
    retention: '30d',
    rawBytes: 10,
    capturedAt: 1_763_800_000_000,
    requestId: 'req-1',
    part: 0,
    parts: 1,
    payloadCodec: 'lz4-frame',
    firstTimestamp: 1_763_800_000_000,
    lastTimestamp: 1_763_800_001_000,
    eventCount: 2,
    clickCount: 1,
    keypressCount: 0,
    mouseActivityCount: 1,
    consoleLogCount: 0,
    consoleWarnCount: 0,
    consoleErrorCount: 0,
    firstUrl: 'https://example.com/',
    firstUrlTimestamp: 1_763_800_000_000,
    urls: ['https://example.com/'],
    activeIntervals: [[1_763_800_000_500, 1_763_800_001_000]],
    ...overrides,
  };
}

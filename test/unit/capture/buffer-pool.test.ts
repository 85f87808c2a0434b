import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type BodyLimits, defaultBodyLimits } from '../../../src/capture/body-encoding.ts';
import { BufferPool } from '../../../src/capture/buffer-pool.ts';
import { buildRecordingMessages } from '../../../src/capture/build-messages.ts';
import { InflightBudget } from '../../../src/capture/inflight-budget.ts';
import { parseSnapshotRequest } from '../../../src/capture/parse-snapshots.ts';
import { type IntakeRoute, RequestIntake } from '../../../src/capture/request-intake.ts';
import { recordingEnabled, TeamAdmission } from '../../../src/capture/team-admission.ts';
import { decompressLz4Frames } from '../../../src/codec/lz4-frames.ts';
import { decodeRecordingMessage } from '../../../src/recordings/message-codec.ts';
import type { Team } from '../../../src/teams/team-store.ts';
import {
  fakeRequest,
  mutated,
  outcome,
  outcomeReleased,
  truncated,
  undeclared,
  uploadOf,
  uploadUrl,
} from './fake-upload.ts';

const newPool = () => new BufferPool({ maxBufferBytes: 4 * 1024 * 1024, maxIdleBytes: 16 * 1024 * 1024 });

/** A posthog-js `/s/` body of `count` events whose text makes it about `count` KB, distinct per `seed`. */
function snapshotBody(seed: string, count: number): Buffer {
  const events = Array.from({ length: count }, (_, i) => ({
    type: 3,
    timestamp: 1_763_800_000_000 + i,
    data: { source: 0, text: `${seed}-${i}-`.padEnd(1000, seed.slice(0, 1)) },
  }));
  return Buffer.from(
    JSON.stringify([
      {
        event: '$snapshot',
        properties: {
          $snapshot_data: events,
          $session_id: `s-${seed}`,
          $window_id: `w-${seed}`,
          token: 'phc_x',
          distinct_id: 'd',
        },
      },
    ]),
  );
}

describe('BufferPool', () => {
  it('lends a buffer to one holder at a time: held ones are never lent again, one given back is, once', () => {
    const pool = newPool();
    const held = Array.from({ length: 8 }, () => pool.take(100_000)!);
    const memory = new Set(held.map((b) => b.bytes.buffer));
    expect(memory.size).toBe(8);
    for (const b of held) expect(b.bytes.length).toBe(100_000);
    const first = held[0]!;
    first.give();
    first.give(); // a second give must not put the buffer in the pool twice
    const again = pool.take(100_000)!;
    expect(again.bytes.buffer).toBe(first.bytes.buffer);
    const other = pool.take(100_000)!;
    expect(memory.has(other.bytes.buffer)).toBe(false); // still held: none of them is lent twice
  });

  it('reuses only buffers close to the size asked, keeps idle memory within its cap, lends nothing too large', () => {
    const pool = new BufferPool({ maxBufferBytes: 1024 * 1024, maxIdleBytes: 3 * 1024 * 1024 });
    const big = pool.take(1024 * 1024)!;
    big.give();
    expect(pool.take(100_000)!.bytes.buffer).not.toBe(big.bytes.buffer); // ten times smaller: a buffer of its own
    const close = pool.take(900_000)!;
    expect(close.bytes.buffer).toBe(big.bytes.buffer);
    expect(close.bytes.length).toBe(900_000);
    expect(pool.take(1024 * 1024 + 1)).toBeUndefined();
    expect(pool.take(0)).toBeUndefined();
    const many = Array.from({ length: 6 }, () => pool.take(1024 * 1024)!);
    for (const b of many) b.give();
    expect(pool.idleCapacity).toBeLessThanOrEqual(3 * 1024 * 1024);
    expect(pool.idleCapacity).toBeGreaterThan(2 * 1024 * 1024);
  });
});

describe('inflating uploads into pooled buffers', () => {
  it('keeps two uploads intact while both are held, and reuses a buffer only once it was released', async () => {
    const outputBuffers = newPool();
    const a = snapshotBody('a', 300);
    const b = snapshotBody('b', 300);
    const c = snapshotBody('c', 290);
    const first = await uploadOf(gzipSync(a), { outputBuffers });
    const second = await uploadOf(gzipSync(b), { outputBuffers });
    expect(first.json.buffer).not.toBe(second.json.buffer);
    expect(first.json.equals(a)).toBe(true);
    expect(second.json.equals(b)).toBe(true);

    first.release();
    const third = await uploadOf(gzipSync(c), { outputBuffers });
    // The inflated bytes went into the pool's buffer (node:zlib's stream took it), and it was reused only after its
    // release: if this fails on a new Node, read-upload.ts `gunzipInto` no longer reaches the stream's buffer.
    expect(third.json.buffer).toBe(first.json.buffer);
    expect(third.json.equals(c)).toBe(true);
    expect(second.json.equals(b)).toBe(true); // still held: untouched by the third upload

    // what the scanner reads out of a body are views into its buffer: why a buffer waits for its release
    expect(parseSnapshotRequest(second.json).sessions[0]!.events[0]!.raw!.buffer).toBe(second.json.buffer);
    second.release();
    third.release();
  });

  it('gives every body the same bytes or error code with pooled buffers as without', async () => {
    const outputBuffers = newPool();
    const json = snapshotBody('p', 20);
    const gz = gzipSync(json);
    const a = Buffer.from('a'.repeat(100_000));
    const lying = (announced: number) => {
      const body = Buffer.from(gzipSync(a));
      body.writeUInt32LE(announced, body.length - 4);
      return body;
    };
    const limited: BodyLimits = { maxDecompressedBytes: 200_000, maxCompressionRatio: 1e9, ratioFloorBytes: 0 };
    const cases: [Buffer, BodyLimits][] = [
      [gz, defaultBodyLimits],
      [Buffer.concat([gzipSync(a), gzipSync(json)]), defaultBodyLimits], // several members
      [Buffer.concat([gz, Buffer.from('trailing')]), defaultBodyLimits],
      [gzipSync(Buffer.alloc(40 * 1024 * 1024)), defaultBodyLimits], // a bomb: the ratio guard
      [gzipSync(Buffer.alloc(200_000, 'x')), limited],
      [gzipSync(Buffer.alloc(200_001, 'x')), limited],
      [gzipSync(Buffer.alloc(0)), defaultBodyLimits],
      ...[0, 10, 99_999, 100_001, 0xffffffff].map((n): [Buffer, BodyLimits] => [lying(n), defaultBodyLimits]),
    ];
    for (const [body, limits] of cases) {
      for (const headers of [{}, undeclared]) {
        const expected = await outcome(uploadOf(body, { limits, headers }));
        const idle = outputBuffers.idleCapacity;
        const pooled = await outcomeReleased(uploadOf(body, { limits, headers, outputBuffers }));
        expect(pooled, `${body.length} ${JSON.stringify(headers)}`).toBe(expected);
        // a failed upload gives nothing back (a stream that failed may still be writing into its buffer)
        if (!expected.startsWith('ok:')) expect(outputBuffers.idleCapacity).toBeLessThanOrEqual(idle);
      }
    }
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated(gz), truncated(gz)), async (bytes) => {
        const expected = await outcome(uploadOf(bytes));
        expect(await outcomeReleased(uploadOf(bytes, { outputBuffers }))).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });
});

describe('the intake and pooled body buffers', () => {
  const team: Team = {
    id: 7,
    name: 't',
    apiToken: 'phc_x',
    sessionRecordingEnabled: true,
    retention: '30d',
    consoleLogCaptureEnabled: true,
  };
  const intakeOf = () =>
    new RequestIntake({
      producerReady: () => true,
      admission: new TeamAdmission(async (token) => (token === team.apiToken ? team : undefined), 1e6),
      budget: new InflightBudget(1024 * 1024 * 1024),
      maxBodyBytes: 25 * 1024 * 1024,
      bodyLimits: defaultBodyLimits,
    });
  const receive = <T>(intake: RequestIntake, json: Buffer, route: IntakeRoute, handle: (body: Buffer) => Promise<T>) =>
    intake.receive(fakeRequest(gzipSync(json)), uploadUrl(), route, (body) => handle(body.json));
  /** The JSONL lines the records carry, decoded. */
  const linesOf = (records: { value: Buffer }[]) =>
    records.flatMap((r) => decompressLz4Frames(decodeRecordingMessage(r.value).payload).toString().split('\n'));
  const expectedLines = (json: Buffer) => {
    const [item] = JSON.parse(json.toString()) as { properties: { $window_id: string; $snapshot_data: unknown[] } }[];
    return [...item!.properties.$snapshot_data.map((e) => JSON.stringify([item!.properties.$window_id, e])), ''];
  };

  it('gives a body buffer back only once its handler settled; the records built from it stay intact', async () => {
    const intake = intakeOf();
    const route: IntakeRoute = { requirement: recordingEnabled, reusesBodyBuffer: true };
    const build = (json: Buffer) =>
      parseSnapshotRequest(json).sessions.flatMap((session) =>
        buildRecordingMessages({ ...session, team }, { maxMessageBytes: 1 << 20, requestId: 'r', capturedAt: 1 }),
      );
    const a = snapshotBody('a', 300);
    const b = snapshotBody('b', 300);
    const c = snapshotBody('c', 290);

    let finishFirst!: () => void;
    const firstWaits = new Promise<void>((resolve) => {
      finishFirst = resolve;
    });
    let firstJson: Buffer | undefined;
    const first = receive(intake, a, route, async (json) => {
      firstJson = json;
      const records = build(json);
      await firstWaits; // a commit's wait: the body is still the handler's
      expect(json.equals(a)).toBe(true);
      return records;
    });
    await expect.poll(() => firstJson).toBeDefined();

    let secondJson: Buffer | undefined;
    const secondRecords = await receive(intake, b, route, async (json) => {
      secondJson = json;
      return build(json);
    });
    expect(secondJson!.buffer).not.toBe(firstJson!.buffer);
    expect(firstJson!.equals(a)).toBe(true);

    finishFirst();
    const firstRecords = await first;
    // both bodies are back in the pool now: the next upload reuses one of them, overwriting it
    let thirdJson: Buffer | undefined;
    const thirdRecords = await receive(intake, c, route, async (json) => {
      thirdJson = json;
      return build(json);
    });
    expect([firstJson!.buffer, secondJson!.buffer]).toContain(thirdJson!.buffer);
    expect(linesOf(firstRecords)).toEqual(expectedLines(a));
    expect(linesOf(secondRecords)).toEqual(expectedLines(b));
    expect(linesOf(thirdRecords)).toEqual(expectedLines(c));
  });

  it('never reuses the body buffer of a route that did not say it may', async () => {
    const intake = intakeOf();
    const route: IntakeRoute = { requirement: recordingEnabled };
    const seeds = ['a', 'b', 'c', 'd'];
    const kept: Buffer[] = [];
    for (const seed of seeds) kept.push(await receive(intake, snapshotBody(seed, 200), route, async (body) => body));
    expect(new Set(kept.map((json) => json.buffer)).size).toBe(kept.length);
    for (const [i, seed] of seeds.entries()) expect(kept[i]!.equals(snapshotBody(seed, 200))).toBe(true);
  });

  it('gives the body buffer of a handler that failed back too', async () => {
    const intake = intakeOf();
    const route: IntakeRoute = { requirement: recordingEnabled, reusesBodyBuffer: true };
    let failedJson: Buffer | undefined;
    await expect(
      receive(intake, snapshotBody('a', 200), route, async (json) => {
        failedJson = json;
        throw new Error('the handler failed');
      }),
    ).rejects.toThrow('the handler failed');
    const next = await receive(intake, snapshotBody('b', 200), route, async (json) => json);
    expect(next.buffer).toBe(failedJson!.buffer);
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SessionActivity } from '../../../src/blob-consumer/session-activity.ts';
import { SessionBatch } from '../../../src/blob-consumer/session-batch.ts';
import { writeObjects } from '../../../src/blob-consumer/write-objects.ts';
import { buildRecordingMessages } from '../../../src/capture/build-messages.ts';
import { decompressLz4Frames } from '../../../src/codec/lz4-frames.ts';
import { type BlockCodec, decodeBlock, decodeObject } from '../../../src/recordings/blob-object.ts';
import { decodeRecordingMessage } from '../../../src/recordings/message-codec.ts';
import { FsBlobStore } from '../../../src/storage/fs-blob-store.ts';
import type { Team } from '../../../src/teams/team-store.ts';

const team = (id: number, retention: Team['retention']): Team => ({
  id,
  name: 't',
  apiToken: 'x',
  sessionRecordingEnabled: true,
  retention,
  consoleLogCaptureEnabled: true,
});
const t0 = Date.UTC(2026, 10, 22, 10, 0, 0);
const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** Feeds messages of three sessions (two retention classes) through a batch, as the blob sink does. */
async function filledBatch(codec: BlockCodec = 'lz4-frame') {
  const dir = await mkdtemp(join(tmpdir(), 'replay-write-'));
  dirs.push(dir);
  const batch = new SessionBatch(dir, 'b1');
  const sessions = [
    {
      team: team(1, '30d'),
      id: 's-a',
      events: [
        { type: 4, timestamp: t0, data: { href: 'https://a/' } },
        { type: 3, timestamp: t0 + 100, data: { source: 1 } },
      ],
    },
    { team: team(1, '30d'), id: 's-b', events: [{ type: 3, timestamp: t0 + 5, data: { source: 2, type: 2 } }] },
    { team: team(2, '1y'), id: 's-c', events: [{ type: 3, timestamp: t0 + 7, data: { source: 5 } }] },
  ];
  let offset = 0;
  for (let round = 0; round < 2; round++) {
    for (const s of sessions) {
      const events = s.events.map((e) => ({ ...e, timestamp: e.timestamp + round * 1000 }));
      for (const m of buildRecordingMessages(
        {
          team: s.team,
          sessionId: s.id,
          distinctId: 'u',
          snapshotSource: 'web',
          snapshotLibrary: 'web',
          events: events.map((event) => ({ windowId: 'w', event })),
        },
        { maxMessageBytes: 1 << 20, requestId: 'r', capturedAt: t0 },
      )) {
        const { header, payload } = decodeRecordingMessage(m.value);
        // What the blob sink spools: the frames as they came, or their JSONL for the zstd codec.
        batch.add('topic', 0, offset, header, codec === 'zstd' ? decompressLz4Frames(payload) : payload);
        batch.consumed('topic', 0, offset++, 0);
      }
    }
  }
  return { batch, sessions, dir };
}

describe('writing a batch into objects', () => {
  for (const codec of ['lz4-frame', 'zstd'] as const) {
    it(`writes one object per retention class, blocks sorted, each decoding to its session (${codec})`, async () => {
      const { batch, sessions, dir } = await filledBatch(codec);
      const store = new FsBlobStore(join(dir, 'blobs'));
      const written = await writeObjects({
        batch,
        store,
        prefix: 'rec',
        codec,
        writer: 'w',
        activity: new SessionActivity(),
        now: t0,
      });
      expect(written.objects.map((o) => o.key.split('/').slice(0, 2).join('/')).sort()).toEqual(['rec/1y', 'rec/30d']);
      expect(written.rows).toHaveLength(3);
      for (const object of written.objects) {
        expect(object.key).toMatch(/^rec\/(30d|1y)\/2026\/11\/22\/\d{13}-[0-9a-f]{12}$/);
        const bytes = await store.getRange(object.key, 0, object.bytes - 1);
        const footer = decodeObject(bytes);
        expect(footer.blocks.map((b) => b.sessionId)).toEqual([...footer.blocks.map((b) => b.sessionId)].sort());
        for (const block of footer.blocks) {
          expect(block.codec).toBe(codec);
          const lines = decodeBlock(bytes.subarray(block.start, block.end + 1), codec)
            .toString()
            .trimEnd()
            .split('\n');
          const session = sessions.find((s) => s.id === block.sessionId)!;
          expect(lines.map((l) => JSON.parse(l)[1])).toEqual([
            ...session.events,
            ...session.events.map((e) => ({ ...e, timestamp: e.timestamp + 1000 })),
          ]);
          expect(block.messageCount).toBe(2);
          expect(block.kafka[0]!.lastOffset - block.kafka[0]!.firstOffset).toBe(3);
        }
      }
      const row = written.rows.find((r) => r.row.session_id === 's-a')!.row;
      expect(row).toMatchObject({ team_id: 1, event_count: 4, first_url: 'https://a/', retention_period_days: 30 });
      expect(row.block_url).toMatch(/^file:\/\/.+\/rec\/30d\/.+\?range=bytes=\d+-\d+$/);
      batch.spool.discard();
    });
  }

  it('leaves a session whose row cannot be built out of the object, reports it for the DLQ, and writes the rest', async () => {
    const { batch, dir } = await filledBatch();
    // A header no check caught (a bug, or a bound added later): its row would break a column's range.
    const [bad] = buildRecordingMessages(
      {
        team: team(1, '30d'),
        sessionId: 's-bad',
        distinctId: 'u',
        snapshotSource: 'web',
        snapshotLibrary: 'web',
        events: [{ windowId: 'w', event: { type: 3, timestamp: t0, data: { source: 1 } } }],
      },
      { maxMessageBytes: 1 << 20, requestId: 'r', capturedAt: t0 },
    );
    const { header, payload } = decodeRecordingMessage(bad!.value);
    batch.add('topic', 1, 0, { ...header, lastTimestamp: 9e15 }, payload);
    batch.consumed('topic', 1, 0, 0);
    const store = new FsBlobStore(join(dir, 'blobs'));
    const written = await writeObjects({
      batch,
      store,
      prefix: 'rec',
      codec: 'lz4-frame',
      writer: 'w',
      activity: new SessionActivity(),
      now: t0,
    });
    expect(written.quarantined.map((q) => [q.session.sessionId, q.error.code])).toEqual([
      ['s-bad', 'summary_row_invalid'],
    ]);
    expect(written.quarantined[0]!.stored).toEqual(payload);
    expect(written.rows.map((r) => r.row.session_id).sort()).toEqual(['s-a', 's-b', 's-c']);
    for (const object of written.objects) {
      const footer = decodeObject(await store.getRange(object.key, 0, object.bytes - 1));
      expect(footer.blocks.map((b) => b.sessionId)).not.toContain('s-bad');
    }
    batch.spool.discard();
  });
});

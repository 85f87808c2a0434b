/**
 * Where capture's CPU goes per byte, stage by stage, in this process (no services): the rrweb corpus cut into
 * posthog-js `/s/` bodies, each stage timed alone in CPU time, with `JSON.parse` and memcpy measured in the same run as
 * the reference a capture that parsed its bodies could never beat.
 *
 *   node bench/capture/stages.ts [--sessions 60] [--rounds 3] [--out FILE]
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { buildRecordingMessages } from '../../src/capture/build-messages.ts';
import { parseSnapshotRequest } from '../../src/capture/parse-snapshots.ts';
import { scanSnapshotBody } from '../../src/capture/snapshot-scanner.ts';
import { compressLz4Frame } from '../../src/codec/lz4-frames.ts';
import type { Team } from '../../src/teams/team-store.ts';
import { amplify, ensureCorpus, posthogBatches } from '../corpus/corpus.ts';
import { benchArgs } from '../shared/args.ts';
import { outOptionUsage, writeBenchResult } from '../shared/bench-result.ts';

const args = benchArgs(
  `Capture's stages on the rrweb corpus, in decompressed MB per CPU-second, next to JSON.parse and memcpy.

  node bench/capture/stages.ts [options]

  --sessions N     sessions of the amplified corpus (default 60, ~44 MB of bodies)
  --rounds N       timed passes over every body per stage (default 3)
${outOptionUsage('capture-stages', 17)}
  --help           this text`,
  {
    sessions: { type: 'string', default: '60' },
    rounds: { type: 'string', default: '3' },
    out: { type: 'string', default: '' },
  },
);
const rounds = args.number('rounds');
const team: Team = {
  id: 1,
  name: 'bench',
  apiToken: 'phc_bench',
  sessionRecordingEnabled: true,
  retention: '30d',
  consoleLogCaptureEnabled: true,
};

const corpus = await ensureCorpus();
const bodies: Buffer[] = [];
for (const session of amplify(corpus, { count: args.number('sessions'), seed: 1, startMs: Date.UTC(2026, 10, 22) })) {
  bodies.push(...posthogBatches(session, { token: team.apiToken }));
}
const gzipped = bodies.map((body) => gzipSync(body));
const requests = bodies.map((body) => parseSnapshotRequest(body));
const totalBytes = bodies.reduce((n, body) => n + body.length, 0);
process.stderr.write(`[bench:capture-stages] ${bodies.length} bodies, ${(totalBytes / 1e6).toFixed(1)} MB\n`);

const build = (index: number) => {
  for (const session of requests[index]!.sessions) {
    buildRecordingMessages({ ...session, team }, { maxMessageBytes: 20 << 20, requestId: 'r', capturedAt: 1 });
  }
};

/** MB of bodies per CPU-second of `stage` over every body, after one untimed pass (JIT warm-up). */
function measure(stage: (index: number) => unknown): number {
  for (let i = 0; i < bodies.length; i++) stage(i);
  const before = process.cpuUsage();
  for (let round = 0; round < rounds; round++) for (let i = 0; i < bodies.length; i++) stage(i);
  const used = process.cpuUsage(before);
  return Number(((totalBytes * rounds) / 1e6 / ((used.user + used.system) / 1e6)).toFixed(1));
}

const stages = {
  memcpy: measure((i) => Buffer.from(bodies[i]!)),
  'JSON.parse (with the UTF-8 decode)': measure((i) => JSON.parse(bodies[i]!.toString('utf8'))),
  gunzip: measure((i) => gunzipSync(gzipped[i]!)),
  'scan (snapshot-scanner)': measure((i) => {
    if (scanSnapshotBody(bodies[i]!) === undefined) throw new Error(`body ${i} fell back to JSON.parse`);
  }),
  'read (scan + bounds + sessions)': measure((i) => parseSnapshotRequest(bodies[i]!)),
  'build messages (JSONL + summary + LZ4)': measure(build),
  'LZ4 frame of the whole body': measure((i) => compressLz4Frame(bodies[i]!)),
  'capture in process (gunzip + read + build)': measure((i) => {
    const request = parseSnapshotRequest(gunzipSync(gzipped[i]!));
    for (const session of request.sessions) {
      buildRecordingMessages({ ...session, team }, { maxMessageBytes: 20 << 20, requestId: 'r', capturedAt: 1 });
    }
  }),
};
const parse = stages['JSON.parse (with the UTF-8 decode)'];
for (const [stage, mbPerCpuSecond] of Object.entries(stages)) {
  console.log(
    `${stage.padEnd(44)} ${String(mbPerCpuSecond).padStart(8)} MB/CPU-s  ${(mbPerCpuSecond / parse).toFixed(2)}× JSON.parse`,
  );
}
const file = await writeBenchResult(
  'capture-stages',
  { date: new Date().toISOString(), bodies: bodies.length, megabytes: totalBytes / 1e6, rounds, stages },
  args.out,
);
process.stderr.write(`[bench:capture-stages] wrote ${file}\n`);

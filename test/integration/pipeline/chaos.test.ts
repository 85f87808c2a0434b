import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runScenario, scenarioTiming } from '../../../bench/chaos/engine.ts';
import { type ChaosPipeline, startChaosPipeline } from '../../../bench/chaos/pipeline.ts';
import { planScenarios } from '../../../bench/chaos/scenarios.ts';
import { sharedServices } from '../../../bench/chaos/services.ts';
import { prng } from '../../../bench/shared/prng.ts';

/**
 * The CI subset of bench/chaos: `node bench/chaos/run.ts --seed 20261202 --quick --scenarios 4 --only <these>` draws
 * the same scenarios.
 */
const SEED = 20261202;
const KINDS = ['kill-blob-consumer', 's3-hang', 'poison', 'kill-capture'] as const;
const timing = scenarioTiming(true, 1000);

const dir = join(tmpdir(), `replay-chaos-${randomUUID()}`);
// The suite's shared services: the faults that would stop one of them (broker, Redis) are not drawn here.
const services = sharedServices(inject('stack'), join(dir, 'spool'));
const plan = planScenarios(prng(SEED), { count: KINDS.length, quick: true, only: KINDS, services });
const log = (message: string) => process.stderr.write(`[chaos] ${message}\n`);

/**
 * DESIGN §5 "Reliability" on the real pipeline (capture, blob consumer, read side and realtime sink as processes
 * with stable identities): a fixed seed of kill -9s, an S3 hang and poison among good traffic. Whatever capture
 * acknowledged is replayable through the API exactly once, and every behaviour is counted once in ClickHouse, its
 * roll-up and Redis. Timing goals are the bench's (bench/chaos/run.ts prints them), not asserted here.
 */
describe('chaos, a fixed seed (the CI subset of bench/chaos)', () => {
  let pipeline: ChaosPipeline;

  beforeAll(async () => {
    await mkdir(dir, { recursive: true });
    pipeline = await startChaosPipeline(services, { dir, flushIntervalMs: timing.flushIntervalMs });
  });
  afterAll(async () => {
    await pipeline?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  for (const [index, scenario] of plan.entries()) {
    it(`${scenario.name} ${JSON.stringify(scenario.params)}: nothing acknowledged lost, nothing doubled`, async () => {
      const { replay, behaviours, quarantine, problems } = await runScenario({
        index,
        scenario,
        pipeline,
        services,
        rand: prng(SEED + 7919 * (index + 1)),
        timing,
        log,
      });
      expect(replay.acknowledged).toBeGreaterThan(0);
      expect({
        problems,
        notReplayable: replay.acknowledged - replay.replayable,
        lost: replay.lost,
        doubled: replay.duplicated,
        duplicateBlocks: replay.duplicateBlocks,
        misjudged: replay.misjudged,
        behavioursLost: behaviours.lost,
        behavioursDoubled: behaviours.duplicated,
        rollupDoubled: behaviours.rollupDuplicated,
        realtimeLost: behaviours.realtimeLost,
        realtimeDoubled: behaviours.realtimeDuplicated,
        poisonNotQuarantined: quarantine?.missing ?? [],
      }).toEqual({
        problems: [],
        notReplayable: 0,
        lost: 0,
        doubled: 0,
        duplicateBlocks: 0,
        misjudged: 0,
        behavioursLost: 0,
        behavioursDoubled: 0,
        rollupDoubled: 0,
        realtimeLost: 0,
        realtimeDoubled: 0,
        poisonNotQuarantined: [],
      });
    });
  }
});

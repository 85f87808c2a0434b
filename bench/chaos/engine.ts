import { auditBehaviours, auditReplays, type BehaviourFigures, type ReplayFigures } from './audit.ts';
import { BehaviourCounter } from './behaviour-counts.ts';
import { CatchUpWatch } from './catch-up.ts';
import type { ChaosPipeline } from './pipeline.ts';
import { PoisonSender } from './poison.ts';
import { ReplayReader } from './replay-reader.ts';
import type { PlannedScenario, ScenarioName, ScenarioParams } from './scenarios.ts';
import type { ChaosServices } from './services.ts';
import { Traffic } from './traffic.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How a scenario runs around its fault. */
export interface ScenarioTiming {
  /** Traffic before the fault phase begins. */
  readonly warmMs: number;
  /** Traffic after the fault has ended. */
  readonly tailMs: number;
  readonly users: number;
  readonly gapMs: number;
  /** A client gives up on a request this long after it was first sent. */
  readonly giveUpMs: number;
  /** Longest wait, once traffic stopped, for everything acknowledged to be playable and counted. */
  readonly recoveryTimeoutMs: number;
  readonly flushIntervalMs: number;
}

/** The bench's timing (the test runs the `quick` one): `quick` has fewer visitors and shorter waits. */
export function scenarioTiming(quick: boolean, flushIntervalMs: number): ScenarioTiming {
  return quick
    ? { warmMs: 1500, tailMs: 1000, users: 4, gapMs: 400, giveUpMs: 45_000, recoveryTimeoutMs: 40_000, flushIntervalMs }
    : {
        warmMs: 3000,
        tailMs: 2000,
        users: 6,
        gapMs: 400,
        giveUpMs: 60_000,
        recoveryTimeoutMs: 90_000,
        flushIntervalMs,
      };
}

export interface ScenarioResult {
  readonly index: number;
  readonly name: ScenarioName;
  readonly params: ScenarioParams;
  /** The fault's start, from the scenario's start, how long the pipeline was broken, and what showed it. */
  readonly fault: { readonly atMs: number; readonly durationMs: number; readonly evidence?: string };
  readonly replay: ReplayFigures;
  readonly behaviours: BehaviourFigures;
  /** Forged topic messages, and how many reached the DLQ with a reason (poison scenarios only). */
  readonly quarantine?: { readonly sent: number; readonly quarantined: number; readonly missing: readonly string[] };
  /**
   * Worst time from "acknowledged" to "playable through the API", counted from the fault's end for what was
   * acknowledged before it; undefined when something acknowledged never became playable.
   */
  readonly worstTimeToPlayableMs: number | undefined;
  /** From the fault's end until everything acknowledged before it was playable and counted; undefined if never. */
  readonly recoveryMs: number | undefined;
  readonly caughtUp: boolean;
  /** What went wrong around the figures (a role not ready, no catch-up in time). */
  readonly problems: string[];
  readonly wallMs: number;
}

/** Whether a scenario lost or doubled anything, replays or behaviours. */
export function failed({ replay: r, behaviours: b }: ScenarioResult): boolean {
  const counts = [r.lost, r.duplicated, r.duplicateBlocks, b.lost, b.duplicated, b.rollupDuplicated];
  return [...counts, b.realtimeLost, b.realtimeDuplicated].some((n) => n > 0);
}

/**
 * One scenario on a fresh team: traffic starts, the fault is injected (at a time drawn from the seed), traffic goes
 * on past the fault's end, then stops; once everything acknowledged is playable and counted (or the recovery timeout
 * passes), every session and behaviour is read back and compared with what capture acknowledged.
 */
export async function runScenario(options: {
  readonly index: number;
  readonly scenario: PlannedScenario;
  readonly pipeline: ChaosPipeline;
  readonly services: ChaosServices;
  readonly rand: () => number;
  readonly timing: ScenarioTiming;
  readonly log: (message: string) => void;
}): Promise<ScenarioResult> {
  const { index, scenario, pipeline, services, timing } = options;
  const log = (message: string) => options.log(`[${index + 1} ${scenario.name}] ${message}`);
  const problems: string[] = [];
  const began = Date.now();
  await pipeline.ready(60_000).catch((error: Error) => {
    problems.push(`not every role was ready before the scenario: ${error.message.split('\n')[0]}`);
  });

  const { team, key } = await pipeline.newTeam();
  const traffic = new Traffic({
    captureUrl: pipeline.captureUrl,
    token: team.apiToken,
    rand: options.rand,
    users: timing.users,
    gapMs: timing.gapMs,
    giveUpMs: timing.giveUpMs,
  });
  const reader = new ReplayReader(pipeline.apiUrl, team.id, key);
  const counter = new BehaviourCounter(pipeline.controlUrl, services.redisUrl);
  const watch = new CatchUpWatch(reader, counter, team.id, traffic);
  const poison = new PoisonSender(services.brokers, team, traffic);
  try {
    const started = Date.now();
    traffic.start();
    watch.start();
    await sleep(timing.warmMs);
    log(`fault ${JSON.stringify(scenario.params)}`);
    const fault = await scenario.inject({ pipeline, services, poison, flushIntervalMs: timing.flushIntervalMs });
    log(`fault over after ${seconds(fault.end - fault.start)}${fault.evidence ? ` (${fault.evidence})` : ''}`);
    await sleep(timing.tailMs);
    await traffic.stop();
    const caughtUp = await watch.caughtUp(timing.recoveryTimeoutMs);
    await watch.stop();
    if (!caughtUp) problems.push(`not caught up ${seconds(timing.recoveryTimeoutMs)} after the traffic stopped`);
    log(caughtUp ? `caught up ${seconds(Date.now() - fault.end)} after the fault; auditing` : problems.at(-1)!);

    const replay = await auditReplays(reader, traffic);
    const behaviours = await auditBehaviours(counter, team.id, traffic);
    const quarantine = poison.forged > 0 ? await poison.quarantined(30_000) : undefined;
    const latency = timeToPlayable(traffic, watch, fault.end);
    const result: ScenarioResult = {
      index,
      name: scenario.name,
      params: scenario.params,
      fault: {
        atMs: fault.start - started,
        durationMs: fault.end - fault.start,
        ...(fault.evidence ? { evidence: fault.evidence } : {}),
      },
      replay,
      behaviours,
      ...(quarantine ? { quarantine } : {}),
      worstTimeToPlayableMs: latency.worst,
      recoveryMs: latency.recovery,
      caughtUp,
      problems,
      wallMs: Date.now() - began,
    };
    log(
      `sent ${replay.sent}, acknowledged ${replay.acknowledged}, replayable ${replay.replayable}, lost ${replay.lost}, ` +
        `doubled ${replay.duplicated}; behaviours acknowledged ${behaviours.acknowledged}, lost ${behaviours.lost}, ` +
        `doubled ${behaviours.duplicated}; worst time to playable ${seconds(latency.worst)}, recovery ${seconds(latency.recovery)}`,
    );
    return result;
  } finally {
    await traffic.stop();
    await watch.stop();
    await counter.close();
  }
}

/** The worst time to playable and the recovery time (see ScenarioResult), from the watch's observations. */
function timeToPlayable(traffic: Traffic, watch: CatchUpWatch, faultEnd: number) {
  let worst = 0;
  let recovery = 0;
  let complete = true;
  for (const upload of traffic.uploads) {
    if (upload.ackedAt === undefined || upload.good.length === 0) continue;
    const at = watch.playableAt.get(upload);
    if (at === undefined) {
      complete = false;
      continue;
    }
    worst = Math.max(worst, at - Math.max(upload.ackedAt, faultEnd));
    if (upload.ackedAt <= faultEnd) recovery = Math.max(recovery, at - faultEnd);
  }
  const behaviours = watch.behavioursCaughtUp(faultEnd);
  if (behaviours === undefined) return { worst: complete ? worst : undefined, recovery: undefined };
  return complete ? { worst, recovery: Math.max(recovery, behaviours) } : { worst: undefined, recovery: undefined };
}

export const seconds = (ms: number | undefined) => (ms === undefined ? 'never' : `${(ms / 1000).toFixed(1)} s`);

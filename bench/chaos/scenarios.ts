import type { ChaosPipeline } from './pipeline.ts';
import type { PoisonSender } from './poison.ts';
import type { RoleProcess } from './role-process.ts';
import type { ChaosServices } from './services.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a fault may touch while the scenario's traffic runs. */
export interface FaultContext {
  readonly pipeline: ChaosPipeline;
  readonly services: ChaosServices;
  readonly poison: PoisonSender;
  readonly flushIntervalMs: number;
}

/** When the pipeline was broken: from the fault's start until it was whole again (restarted, reconnected). */
export interface FaultWindow {
  readonly start: number;
  readonly end: number;
  /** What shows the fault took effect (requests refused, intake paused), where the pipeline can tell. */
  readonly evidence?: string;
}

export type ScenarioParams = Readonly<Record<string, number | string | boolean>>;

/** A scenario drawn from the seed: its timing, printed and saved, and the fault it will inject. */
export interface DrawnScenario {
  readonly params: ScenarioParams;
  inject(context: FaultContext): Promise<FaultWindow>;
}

interface ScenarioKind {
  readonly summary: string;
  /** Whether this run can cause the fault (some need services the run owns). */
  readonly available?: (services: ChaosServices) => boolean;
  readonly draw: (rand: () => number, quick: boolean) => DrawnScenario;
}

/** A whole number of milliseconds uniform in [low, high]. */
const between = (rand: () => number, low: number, high: number) => low + Math.floor(rand() * (high - low + 1));

/** A short outage's length: 3-10 s, or 2-4 s with --quick. */
const outageMs = (rand: () => number, quick: boolean) =>
  quick ? between(rand, 2000, 4000) : between(rand, 3000, 10_000);

/**
 * kill -9 at `afterFraction` of the way into the fault phase (1.5 s long, or as `maxAfterMs` says), then the same
 * identity started again `downMs` later.
 */
function killAndRestart(pick: (pipeline: ChaosPipeline) => RoleProcess, maxAfterMs?: (flushMs: number) => number) {
  return (rand: () => number, quick: boolean): DrawnScenario => {
    const afterFraction = rand();
    const downMs = between(rand, 0, quick ? 800 : 1500);
    return {
      params: { afterFraction: Number(afterFraction.toFixed(3)), downMs },
      async inject({ pipeline, flushIntervalMs }) {
        await sleep(Math.floor(afterFraction * (maxAfterMs?.(flushIntervalMs) ?? 1500)));
        const role = pick(pipeline);
        const start = Date.now();
        await role.kill();
        await sleep(downMs);
        role.start();
        return { start, end: Date.now() };
      },
    };
  };
}

/** `down`, then `up` after an outage drawn from the seed; `evidence` describes what the outage did. */
function outage(
  down: (context: FaultContext) => Promise<void> | void,
  up: (context: FaultContext) => Promise<void> | void,
  evidence?: (context: FaultContext) => Promise<() => Promise<string>>,
) {
  return (rand: () => number, quick: boolean): DrawnScenario => {
    const durationMs = outageMs(rand, quick);
    return {
      params: { durationMs },
      async inject(context) {
        const observed = await evidence?.(context);
        const start = Date.now();
        await down(context);
        await sleep(durationMs);
        await up(context);
        const end = Date.now();
        return { start, end, ...(observed ? { evidence: await observed() } : {}) };
      },
    };
  };
}

/** Counts what a counter of the fault proxy or a role rose by during the outage. */
function rise(what: string, read: (context: FaultContext) => Promise<number | undefined> | number) {
  return async (context: FaultContext) => {
    const before = (await read(context)) ?? 0;
    return async () => `${what}: ${((await read(context)) ?? 0) - before}`;
  };
}

async function controlRequest(pipeline: ChaosPipeline, path: string): Promise<void> {
  const response = await fetch(`${pipeline.controlUrl}${path}`, {
    method: 'POST',
    signal: AbortSignal.timeout(30_000),
  });
  if (!response.ok) throw new Error(`read side ${path}: ${response.status} ${await response.text()}`);
}

/** Every kind of scenario, by the name `--only` takes. */
export const scenarioKinds = {
  'kill-capture': {
    summary: 'kill -9 of capture mid-traffic, restarted with the same transactional id',
    draw: killAndRestart((p) => p.roles.capture),
  },
  'kill-blob-consumer': {
    summary: 'kill -9 of the blob consumer at a random point of its flush cycle, restarted as the same member',
    draw: killAndRestart(
      (p) => p.roles.blobConsumer,
      (flushMs) => 2 * flushMs,
    ),
  },
  'kill-read-side': {
    summary: 'kill -9 of the process running the summary sink, the behaviour sink and the API (one chDB)',
    draw: killAndRestart((p) => p.roles.readSide),
  },
  'kill-realtime-sink': {
    summary: 'kill -9 of the realtime sink, restarted as the same member',
    draw: killAndRestart((p) => p.roles.realtimeSink),
  },
  'broker-restart': {
    summary: 'the Kafka broker stopped (or killed -9) and started again on its data',
    available: (services) => services.restartBroker !== undefined,
    draw: (rand) => {
      const hard = rand() < 0.5;
      return {
        params: { hard },
        async inject({ services }) {
          const start = Date.now();
          await services.restartBroker!(hard);
          return { start, end: Date.now() };
        },
      };
    },
  },
  's3-down': {
    summary: 'every S3 request answered 503 SlowDown',
    draw: outage(
      ({ pipeline }) => pipeline.s3.setFailing(true),
      ({ pipeline }) => pipeline.s3.setFailing(false),
      rise('S3 requests answered 503', ({ pipeline }) => pipeline.s3.failedRequests),
    ),
  },
  's3-hang': {
    summary: 'every S3 request read and never answered',
    draw: outage(
      ({ pipeline }) => pipeline.s3.setBlackhole(true),
      ({ pipeline }) => pipeline.s3.setBlackhole(false),
      rise('S3 requests left unanswered', ({ pipeline }) => pipeline.s3.swallowedRequests),
    ),
  },
  'clickhouse-down': {
    summary: "the sinks' tables detached: every insert and read of them fails",
    draw: outage(
      ({ pipeline }) => controlRequest(pipeline, '/clickhouse/down'),
      ({ pipeline }) => controlRequest(pipeline, '/clickhouse/up'),
    ),
  },
  'redis-down': {
    summary: 'Redis stopped, then started again on its data',
    available: (services) => services.redisOutage !== undefined,
    draw: outage(
      ({ services }) => services.redisOutage!.stop(),
      ({ services }) => services.redisOutage!.start(),
    ),
  },
  'consumer-join-leave': {
    summary: 'a second blob consumer joins the group under load, then leaves (SIGTERM) or dies (kill -9)',
    draw: (rand, quick) => {
      const stayMs = quick ? between(rand, 2000, 4000) : between(rand, 2000, 8000);
      const leave = rand() < 0.5 ? 'kill' : 'stop';
      return {
        params: { stayMs, leave },
        async inject({ pipeline }) {
          const start = Date.now();
          const second = await pipeline.joinBlobConsumer();
          await sleep(stayMs);
          const taken = await second.metric('consumer_messages_total');
          await (leave === 'kill' ? second.kill() : second.stop());
          return { start, end: Date.now(), evidence: `messages the second consumer took: ${taken ?? 'no answer'}` };
        },
      };
    },
  },
  'disk-watermark': {
    summary: "the spool disk filled below the consumers' free-space watermark by another file, then freed",
    available: (services) => services.spoolDisk !== undefined,
    draw: outage(
      ({ services }) => services.spoolDisk!.fill(),
      ({ services }) => services.spoolDisk!.release(),
      rise('blob consumer intake pauses', ({ pipeline }) =>
        pipeline.roles.blobConsumer.metric('consumer_pauses_total'),
      ),
    ),
  },
  poison: {
    summary: 'poison inputs mixed into good traffic: through capture, and undecodable messages onto the topic',
    draw: (rand, quick) => {
      const rounds = between(rand, 2, quick ? 3 : 5);
      const gapMs = between(rand, 200, 1500);
      return {
        params: { rounds, gapMs },
        async inject({ poison }) {
          const start = Date.now();
          for (let round = 0; round < rounds; round++) {
            await poison.send();
            await sleep(gapMs);
          }
          // Nothing was down: what follows is ordinary latency.
          return { start, end: start };
        },
      };
    },
  },
} satisfies Record<string, ScenarioKind>;

export type ScenarioName = keyof typeof scenarioKinds;

export const isScenarioName = (name: string): name is ScenarioName => Object.hasOwn(scenarioKinds, name);

export interface PlannedScenario extends DrawnScenario {
  readonly name: ScenarioName;
}

/**
 * `count` scenarios drawn from `rand`: the kinds in a shuffled order, every kind once before any repeats, each with
 * its own timing. Only kinds in `only` (when given) that this run can cause are drawn.
 */
export function planScenarios(
  rand: () => number,
  options: { count: number; quick: boolean; only?: readonly ScenarioName[]; services: ChaosServices },
): PlannedScenario[] {
  const kinds = (Object.keys(scenarioKinds) as ScenarioName[]).filter((name) => {
    const kind: ScenarioKind = scenarioKinds[name];
    return (!options.only || options.only.includes(name)) && (kind.available?.(options.services) ?? true);
  });
  if (kinds.length === 0) return [];
  const plan: PlannedScenario[] = [];
  let deck: ScenarioName[] = [];
  while (plan.length < options.count) {
    if (deck.length === 0) {
      deck = [...kinds];
      for (let i = deck.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [deck[i], deck[j]] = [deck[j]!, deck[i]!];
      }
    }
    const name = deck.shift()!;
    plan.push({ name, ...scenarioKinds[name].draw(rand, options.quick) });
  }
  return plan;
}

/** The kinds this run cannot cause (it does not own the service they stop). */
export function unavailableKinds(services: ChaosServices): ScenarioName[] {
  return (Object.keys(scenarioKinds) as ScenarioName[]).filter(
    (name) => !((scenarioKinds[name] as ScenarioKind).available?.(services) ?? true),
  );
}

/**
 * One client's share of the bench, in its own process (started by bench.ts): produce every workload, read each back
 * in a fresh group, then the feature run. Writes its results as JSON to the path in the job.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { kafkajsClient, loadBenchPackage } from './kafkajs-api.ts';
import {
  type ClientUnderTest,
  type ConsumeResult,
  errorText,
  type FeatureChecks,
  type FeatureTopics,
  type ProduceResult,
  type RdKafkaModule,
  since,
  withTimeout,
} from './lib.ts';
import { makeCorpus } from './payload.ts';
import { rdkafkaClient } from './rdkafka-api.ts';

export interface WorkerJob {
  readonly client: string;
  readonly brokers: string;
  readonly sessions: number;
  readonly workloads: readonly {
    readonly name: string;
    readonly topic: string;
    readonly valueBytes: number;
    readonly count: number;
    readonly distinctValues: number;
    readonly seed: number;
  }[];
  /** Present in the first round only: the feature run. */
  readonly features?: FeatureTopics;
  readonly phaseMs: number;
  readonly featureMs: number;
  /** Epoch ms after which no new phase starts. */
  readonly deadline: number;
  readonly out: string;
}

export interface WorkerResult {
  readonly client: string;
  readonly version?: string;
  readonly engine?: string;
  readonly error?: string;
  readonly produce: Record<string, ProduceResult | { skipped: string }>;
  readonly consume: Record<string, ConsumeResult | { skipped: string }>;
  readonly features?: FeatureChecks;
  readonly lz4Ratio: Record<string, number>;
}

async function load(id: string, brokers: string): Promise<ClientUnderTest> {
  switch (id) {
    case 'node-rdkafka': {
      const { default: Kafka } = await import('node-rdkafka');
      const { version } = createRequire(import.meta.url)('node-rdkafka/package.json') as { version: string };
      return rdkafkaClient(Kafka, { id, label: 'node-rdkafka', version }, brokers);
    }
    case 'confluent-rdkafka': {
      const mod = (await loadBenchPackage('@confluentinc/kafka-javascript')) as RdKafkaModule;
      const { version } = (await loadBenchPackage('@confluentinc/kafka-javascript/package.json')) as {
        version: string;
      };
      return rdkafkaClient(mod, { id, label: '@confluentinc/kafka-javascript (node-rdkafka API)', version }, brokers);
    }
    case 'confluent-kafkajs':
      return kafkajsClient('confluent', brokers);
    case 'kafkajs':
      return kafkajsClient('kafkajs', brokers);
    default:
      throw new Error(`unknown client ${id}`);
  }
}

async function timed<T extends object>(run: () => Promise<T>): Promise<T & { cpuSeconds: number }> {
  const start = performance.now();
  const cpu = process.cpuUsage();
  const result = await run();
  return { ...result, cpuSeconds: since(start, cpu).cpuSeconds };
}

async function main(jobFile: string): Promise<void> {
  const job = JSON.parse(await readFile(jobFile, 'utf8')) as WorkerJob;
  // Watchdog: the parent also kills us, but a worker never outlives its budget by much on its own either.
  setTimeout(() => process.exit(3), Math.max(0, job.deadline - Date.now()) + job.featureMs + 30_000).unref();
  const result: WorkerResult = { client: job.client, produce: {}, consume: {}, lz4Ratio: {} };
  const save = () => writeFile(job.out, JSON.stringify(result));
  let client: ClientUnderTest;
  try {
    client = await load(job.client, job.brokers);
  } catch (error) {
    await writeFile(job.out, JSON.stringify({ ...result, error: errorText(error) }));
    return;
  }
  Object.assign(result, { version: client.version, engine: client.engine });
  const left = () => job.deadline - Date.now();

  const delivered: Record<string, number> = {};
  for (const w of job.workloads) {
    if (left() <= 0) {
      result.produce[w.name] = { skipped: 'time budget spent' };
      continue;
    }
    const corpus = makeCorpus(w.valueBytes, w.distinctValues, job.sessions, w.seed);
    result.lz4Ratio[w.name] = corpus.lz4Ratio;
    try {
      const produced = await timed(() =>
        client.produce(w.topic, corpus, w.count, Date.now() + Math.min(job.phaseMs, left())),
      );
      result.produce[w.name] = produced;
      delivered[w.name] = produced.messages;
    } catch (error) {
      result.produce[w.name] = { skipped: `produce failed: ${errorText(error)}` };
    }
    console.log(`  ${job.client} produce ${w.name}: ${JSON.stringify(result.produce[w.name])}`);
    await save();
  }
  for (const w of job.workloads) {
    const expected = delivered[w.name] ?? 0;
    if (expected === 0) continue;
    if (left() <= 0) {
      result.consume[w.name] = { skipped: 'time budget spent' };
      continue;
    }
    try {
      const deadline = Date.now() + Math.min(job.phaseMs, left());
      result.consume[w.name] = await withTimeout(
        timed(() => client.consume(w.topic, w.topic, expected, deadline)),
        job.phaseMs + 20_000,
        'consume',
      );
    } catch (error) {
      result.consume[w.name] = { skipped: `consume failed: ${errorText(error)}` };
    }
    console.log(`  ${job.client} consume ${w.name}: ${JSON.stringify(result.consume[w.name])}`);
    await save();
  }
  if (!job.features) return;
  try {
    const features = await withTimeout(
      client.features(job.features, Date.now() + job.featureMs),
      job.featureMs + 20_000,
      'feature run',
    );
    Object.assign(result, { features });
  } catch (error) {
    const failed = { ok: false, detail: errorText(error) };
    Object.assign(result, {
      features: { cooperativeSticky: failed, transactions: failed, readCommitted: failed, zstd: failed },
    });
  }
  console.log(`  ${job.client} features: ${JSON.stringify(result.features)}`);
  await save();
}

const jobFile = process.argv[2];
if (!jobFile) {
  console.error('usage: node worker.ts JOB.json (started by bench.ts)');
  process.exit(2);
}
main(jobFile).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);

import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import Kafka from 'node-rdkafka';
import { clickhouseSchemaDir } from '../../src/clickhouse/migrations.ts';

/**
 * A Kafka engine alternative of schema/clickhouse/alternatives/ (`file`, e.g. 'kafka-engine.sql') with its
 * placeholders filled in, one statement each, split as its header tells an operator to: on ";" at the end of a line.
 * Throws if a placeholder is left, so a renamed one fails loudly instead of reaching ClickHouse.
 */
export async function kafkaEngineStatements(file: string, placeholders: Record<string, string>): Promise<string[]> {
  let text = await readFile(join(clickhouseSchemaDir, 'alternatives', file), 'utf8');
  for (const [name, value] of Object.entries(placeholders)) text = text.replaceAll(`{${name}}`, value);
  const left = text.match(/\{kafka_\w+\}/);
  if (left) throw new Error(`${file}: placeholder ${left[0]} not filled in`);
  return text
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter((s) => s.replace(/--.*$/gm, '').trim());
}

/** Produces records inside a transaction that is then aborted: a read_committed consumer never sees them. */
export async function produceAborted(
  brokers: string,
  topic: string,
  records: readonly { key: string; value: Buffer }[],
): Promise<void> {
  const producer = new Kafka.Producer({
    'metadata.broker.list': brokers,
    'transactional.id': `aborted-${randomUUID()}`,
    dr_cb: true,
  });
  const call = (fn: (cb: (error: unknown) => void) => void) =>
    new Promise<void>((resolve, reject) => fn((error) => (error ? reject(error) : resolve())));
  await new Promise<void>((resolve, reject) =>
    producer.connect({ timeout: 10_000 }, (error) => (error ? reject(error) : resolve())),
  );
  producer.setPollInterval(10);
  try {
    await call((cb) => producer.initTransactions(10_000, cb));
    await call((cb) => producer.beginTransaction(cb));
    for (const r of records) producer.produce(topic, null, r.value, r.key);
    await call((cb) => producer.flush(10_000, cb));
    await call((cb) => producer.abortTransaction(10_000, cb));
  } finally {
    await new Promise<void>((resolve) => producer.disconnect(() => resolve()));
  }
}

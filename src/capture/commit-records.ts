import type { ProducedRecord } from '../kafka/transactional-producer.ts';
import type { CaptureMetrics } from './capture-metrics.ts';

/**
 * Commits one request's records in one Kafka transaction (the transactional producer's `send`: all of them become
 * visible to `read_committed` readers, or none does), timing the commit and counting what was committed by topic.
 * Every route of capture that writes to Kafka goes through here; it rejects (`kafka_unavailable`, ...) when the
 * transaction did not commit.
 */
export async function commitRecords(
  send: (records: readonly ProducedRecord[]) => Promise<void>,
  metrics: CaptureMetrics,
  records: readonly ProducedRecord[],
): Promise<void> {
  if (records.length === 0) return;
  const started = process.hrtime.bigint();
  let outcome = 'failed';
  try {
    await send(records);
    outcome = 'committed';
  } finally {
    metrics.produceLatency.observe({ outcome }, Number(process.hrtime.bigint() - started) / 1e9);
  }
  for (const record of records) {
    metrics.producedMessages.inc({ topic: record.topic });
    metrics.producedBytes.inc({ topic: record.topic }, record.value.length);
  }
}

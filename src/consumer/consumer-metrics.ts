import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { classOfCode, type ErrorCode, errorCatalogue } from '../errors/index.ts';

/** Every code a message can be quarantined with: the catalogue's poison codes (`unhandled_error` among them). */
const quarantineReasons = (Object.keys(errorCatalogue) as ErrorCode[]).filter((code) => classOfCode(code) === 'poison');

/** The consumer framework's metrics (docs/blob-consumer.md lists them). */
export function createConsumerMetrics(registry: Registry) {
  const registers = [registry];
  const metrics = {
    messages: new Counter({ name: 'consumer_messages_total', help: 'Messages consumed.', registers }),
    bytes: new Counter({ name: 'consumer_bytes_total', help: 'Message bytes consumed (values).', registers }),
    batchSize: new Histogram({
      name: 'consumer_batch_messages',
      help: 'Messages per batch handed to the sink.',
      buckets: [1, 10, 50, 100, 250, 500, 1000, 5000],
      registers,
    }),
    handleSeconds: new Histogram({
      name: 'consumer_sink_handle_seconds',
      help: 'Time the sink took to take one batch.',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    }),
    lagMessages: new Gauge({
      name: 'consumer_lag_messages',
      help: 'Messages between the consumer position and the end of the partition (0 when caught up).',
      labelNames: ['topic', 'partition'],
      registers,
    }),
    lagSeconds: new Gauge({
      name: 'consumer_lag_seconds',
      help: 'Age of the last message read on a partition that is behind (0 when caught up).',
      labelNames: ['topic', 'partition'],
      registers,
    }),
    paused: new Gauge({ name: 'consumer_paused', help: '1 while fetching is paused by backpressure.', registers }),
    pauses: new Counter({
      name: 'consumer_pauses_total',
      help: 'Times fetching was paused by backpressure.',
      registers,
    }),
    quarantined: new Counter({
      name: 'consumer_quarantined_total',
      help: 'Messages the sink refused as poison (or that failed repeatedly unclassified), sent to the DLQ, by code.',
      labelNames: ['reason'],
      registers,
    }),
    retries: new Counter({
      name: 'consumer_retries_total',
      help: 'Transient failures of a message: its partition was rewound and paused for a backoff, by code.',
      labelNames: ['code'],
      registers,
    }),
    rebalances: new Counter({
      name: 'consumer_rebalances_total',
      help: 'Partition assignments and revocations.',
      labelNames: ['kind'],
      registers,
    }),
  };
  // Each reason's series exists from the start at 0, so the first quarantine of a reason is an increase that rate()
  // and increase() see (a series born at 1 has none), and the DLQ alert fires on it.
  for (const reason of quarantineReasons) metrics.quarantined.inc({ reason }, 0);
  return metrics;
}

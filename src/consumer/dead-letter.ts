import type Kafka from 'node-rdkafka';
import type { ProducedRecord } from '../kafka/transactional-producer.ts';

/**
 * A message a sink cannot use, as a record for the DLQ topic: the original key and value, the reason (a stable code)
 * and where it came from in headers, so an operator can inspect and replay it.
 */
export function deadLetterRecord(
  dlqTopic: string,
  message: Kafka.Message,
  reason: string,
  detail: string,
): ProducedRecord {
  const headers: Record<string, string> = {};
  for (const header of message.headers ?? []) {
    for (const [key, value] of Object.entries(header)) headers[`original_${key}`] = String(value);
  }
  return {
    topic: dlqTopic,
    key: message.key ? String(message.key) : '',
    value: message.value ?? Buffer.alloc(0),
    headers: {
      ...headers,
      dlq_reason: reason,
      dlq_detail: detail.slice(0, 1000),
      dlq_source_topic: message.topic,
      dlq_source_partition: String(message.partition),
      dlq_source_offset: String(message.offset),
      dlq_at: String(Date.now()),
    },
  };
}

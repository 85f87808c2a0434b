import type Kafka from 'node-rdkafka';
import type { ReplayError } from '../errors/index.ts';
import { MAX_MESSAGE_BYTES } from '../kafka/topics.ts';
import type { ProducedRecord } from '../kafka/transactional-producer.ts';

/** Room left in a DLQ record for its headers. */
const DLQ_VALUE_LIMIT = MAX_MESSAGE_BYTES - 64 * 1024;

/** Where a quarantined record came from: one message, or an offset range of one partition. */
interface Source {
  readonly topic: string;
  readonly partition: number;
  readonly firstOffset: number;
  readonly lastOffset: number;
}

function dlqHeaders(source: Source, error: ReplayError): Record<string, string> {
  return {
    dlq_reason: error.code,
    dlq_class: error.errorClass,
    dlq_detail: error.message.slice(0, 1000),
    dlq_source_topic: source.topic,
    dlq_source_partition: String(source.partition),
    dlq_source_offset: String(source.firstOffset),
    dlq_source_last_offset: String(source.lastOffset),
    dlq_at: String(Date.now()),
  };
}

/**
 * A message a sink cannot use, as a record for the DLQ topic: the original key and value, the reason (its catalogue
 * code) and where it came from in headers, so an operator can inspect and replay it.
 */
export function deadLetterRecord(dlqTopic: string, message: Kafka.Message, error: ReplayError): ProducedRecord {
  const headers: Record<string, string> = {};
  for (const header of message.headers ?? []) {
    for (const [key, value] of Object.entries(header)) headers[`original_${key}`] = String(value);
  }
  const value = message.value ?? Buffer.alloc(0);
  const offset = message.offset;
  return {
    topic: dlqTopic,
    key: message.key ? String(message.key) : '',
    value: value.length > DLQ_VALUE_LIMIT ? value.subarray(0, DLQ_VALUE_LIMIT) : value,
    headers: {
      ...headers,
      ...dlqHeaders(
        { topic: message.topic, partition: message.partition, firstOffset: offset, lastOffset: offset },
        error,
      ),
      ...(value.length > DLQ_VALUE_LIMIT ? { dlq_truncated_from: String(value.length) } : {}),
    },
  };
}

/**
 * A session a flush could not encode, as one DLQ record: the session's spooled bytes (what its messages carried, in
 * offset order), with the team, session and the offset range of its messages.
 */
export function quarantinedSessionRecord(
  dlqTopic: string,
  source: Source,
  session: { readonly teamId: number; readonly sessionId: string },
  bytes: Buffer,
  error: ReplayError,
): ProducedRecord {
  return {
    topic: dlqTopic,
    key: session.sessionId,
    value: bytes.length > DLQ_VALUE_LIMIT ? bytes.subarray(0, DLQ_VALUE_LIMIT) : bytes,
    headers: {
      team_id: String(session.teamId),
      session_id: session.sessionId,
      ...dlqHeaders(source, error),
      ...(bytes.length > DLQ_VALUE_LIMIT ? { dlq_truncated_from: String(bytes.length) } : {}),
    },
  };
}

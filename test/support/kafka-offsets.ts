import Kafka from 'node-rdkafka';

/** A consumer group's position on a topic, as the broker holds it. */
export interface GroupOffsets {
  /** Per partition: the committed offset (the next one to read), or -1 when the group committed nothing there. */
  readonly committed: number[];
  /** Per partition: the high watermark (one past the last message). */
  readonly end: number[];
}

/**
 * Reads a group's committed offsets and the topic's end offsets without joining the group (an OffsetFetch request
 * through a consumer that never subscribes), so it can run beside the group's live members.
 */
export async function groupOffsets(
  brokers: string,
  groupId: string,
  topic: string,
  partitions: number,
): Promise<GroupOffsets> {
  const consumer = new Kafka.KafkaConsumer(
    { 'metadata.broker.list': brokers, 'group.id': groupId, 'enable.auto.commit': false },
    {},
  );
  await new Promise<void>((resolve, reject) =>
    consumer.connect({ timeout: 10_000 }, (error) => (error ? reject(error) : resolve())),
  );
  try {
    const refs = Array.from({ length: partitions }, (_, partition) => ({ topic, partition }));
    const committed = await new Promise<Kafka.TopicPartitionOffset[]>((resolve, reject) =>
      consumer.committed(refs, 10_000, (error, got) => (error ? reject(error) : resolve(got))),
    );
    const end: number[] = [];
    for (const { partition } of refs) {
      const marks = await new Promise<Kafka.WatermarkOffsets>((resolve, reject) =>
        consumer.queryWatermarkOffsets(topic, partition, 10_000, (error, got) =>
          error ? reject(error) : resolve(got),
        ),
      );
      end.push(marks.highOffset);
    }
    const byPartition = new Map(committed.map((c) => [c.partition, c.offset]));
    return {
      committed: refs.map(({ partition }) => {
        const offset = byPartition.get(partition) ?? -1;
        return offset >= 0 ? offset : -1;
      }),
      end,
    };
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
}

/** Polls `probe` every `intervalMs` until it returns a truthy value (returned) or `timeoutMs` passes (throws). */
export async function eventually<T>(
  probe: () => Promise<T>,
  what: string,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Waits until a group has committed every partition of a topic up to its end; resolves with the offsets. */
export function allCommitted(
  brokers: string,
  groupId: string,
  topic: string,
  partitions: number,
  timeoutMs = 60_000,
): Promise<GroupOffsets> {
  return eventually(
    async () => {
      const o = await groupOffsets(brokers, groupId, topic, partitions);
      return o.end.every((end, p) => o.committed[p] === end) ? o : undefined;
    },
    `group ${groupId} to commit all of ${topic}`,
    timeoutMs,
  );
}

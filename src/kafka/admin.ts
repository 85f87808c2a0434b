import Kafka from 'node-rdkafka';
import type { TopicSpec } from './topics.ts';

/**
 * Creates the topics that do not exist yet, with their configs; existing topics are left as they are. Returns the
 * names it created. `replicationFactor` -1 takes the broker's `default.replication.factor`.
 */
export async function ensureTopics(
  brokers: string,
  topics: readonly TopicSpec[],
  options: { readonly timeoutMs?: number; readonly replicationFactor?: number } = {},
): Promise<string[]> {
  const { timeoutMs = 30_000, replicationFactor = 1 } = options;
  const created: string[] = [];
  const admin = Kafka.AdminClient.create({ 'metadata.broker.list': brokers, 'client.id': 'replay-admin' });
  try {
    for (const spec of topics) {
      await new Promise<void>((resolve, reject) => {
        admin.createTopic(
          {
            topic: spec.name,
            num_partitions: spec.partitions,
            replication_factor: replicationFactor,
            config: { ...spec.config },
          },
          timeoutMs,
          (error) => {
            if (error && error.code !== Kafka.CODES.ERRORS.ERR_TOPIC_ALREADY_EXISTS) return reject(error);
            if (!error) created.push(spec.name);
            resolve();
          },
        );
      });
    }
  } finally {
    admin.disconnect();
  }
  return created;
}

import Kafka from 'node-rdkafka';
import type { TopicSpec } from './topics.ts';

/** Creates the topics that do not exist yet, with their configs; existing topics are left as they are. */
export async function ensureTopics(brokers: string, topics: readonly TopicSpec[], timeoutMs = 30_000): Promise<void> {
  const admin = Kafka.AdminClient.create({ 'metadata.broker.list': brokers, 'client.id': 'replay-admin' });
  try {
    for (const spec of topics) {
      await new Promise<void>((resolve, reject) => {
        admin.createTopic(
          { topic: spec.name, num_partitions: spec.partitions, replication_factor: 1, config: { ...spec.config } },
          timeoutMs,
          (error) => (error && error.code !== Kafka.CODES.ERRORS.ERR_TOPIC_ALREADY_EXISTS ? reject(error) : resolve()),
        );
      });
    }
  } finally {
    admin.disconnect();
  }
}

/**
 * The topics of the pipeline and the configs they are created with. Names are contracts (DESIGN §3.2, §3.5); the
 * numbers are defaults a deployment may override when it creates topics itself.
 */
export const MAX_MESSAGE_BYTES = 20 * 1024 * 1024;

export interface TopicSpec {
  readonly name: string;
  readonly partitions: number;
  readonly config: Readonly<Record<string, string>>;
}

const DAY_MS = 24 * 60 * 60 * 1000;

function topic(name: string, partitions: number, retentionDays: number): TopicSpec {
  return {
    name,
    partitions,
    config: {
      'max.message.bytes': String(MAX_MESSAGE_BYTES),
      'retention.ms': String(retentionDays * DAY_MS),
      // Producers compress (LZ4 frames inside our envelope, then the batch codec); the broker keeps bytes as sent.
      'compression.type': 'producer',
    },
  };
}

export const topicNames = {
  recordings: 'session_recording_snapshot_item_events',
  recordingsOverflow: 'session_recording_snapshot_item_overflow',
  recordingsDlq: 'session_recording_snapshot_item_events_dlq',
  replaySummaries: 'clickhouse_session_replay_events',
  replaySummariesDlq: 'clickhouse_session_replay_events_dlq',
  userBehaviors: 'user_behaviors',
  userBehaviorsDlq: 'user_behaviors_dlq',
  /** The behaviour sink's quarantine (the realtime sink's is user_behaviors_dlq): each says which consumer refused. */
  userBehaviorsClickhouseDlq: 'clickhouse_user_behaviors_dlq',
} as const;

/** All pipeline topics with `partitions` partitions each (DLQs get one: they are low-volume and read by people). */
export function pipelineTopics(partitions: number): TopicSpec[] {
  return [
    topic(topicNames.recordings, partitions, 3),
    topic(topicNames.recordingsOverflow, partitions, 3),
    topic(topicNames.recordingsDlq, 1, 14),
    topic(topicNames.replaySummaries, partitions, 3),
    topic(topicNames.replaySummariesDlq, 1, 14),
    topic(topicNames.userBehaviors, partitions, 3),
    topic(topicNames.userBehaviorsDlq, 1, 14),
    topic(topicNames.userBehaviorsClickhouseDlq, 1, 14),
  ];
}

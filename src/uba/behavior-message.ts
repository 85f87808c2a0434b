import { topicNames } from '../kafka/topics.ts';
import type { ProducedRecord } from '../kafka/transactional-producer.ts';
import { BEHAVIOR_FORMAT } from './behavior-bounds.ts';
import type { BehaviorRecord } from './behavior-record.ts';

/**
 * A behaviour as one Kafka record on `user_behaviors` (DESIGN §3.8): key = `user_id` (one user's behaviours stay in
 * order on one partition), value = the BehaviorRecord as UTF-8 JSON, headers `tenant_id`, `event_id` and `format`
 * (`behavior/1`), so a consumer can route, deduplicate or quarantine a record without parsing it.
 */
export function behaviorMessage(record: BehaviorRecord): ProducedRecord {
  return {
    topic: topicNames.userBehaviors,
    key: record.user_id,
    value: Buffer.from(JSON.stringify(record)),
    headers: { tenant_id: String(record.tenant_id), event_id: record.event_id, format: BEHAVIOR_FORMAT },
  };
}

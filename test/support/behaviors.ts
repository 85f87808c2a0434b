import { randomUUID } from 'node:crypto';
import type { BehaviorRecord } from '../../src/uba/behavior-record.ts';

/**
 * A valid BehaviorRecord with neutral defaults (a click on item-1 by u1 of tenant 7, now, no context): tests set what
 * they exercise. `event_id` is fresh on every call unless given.
 */
export function sampleBehavior(overrides: Partial<BehaviorRecord> = {}): BehaviorRecord {
  const timestamp = overrides.timestamp ?? Date.now();
  return {
    event_id: randomUUID(),
    tenant_id: 7,
    user_id: 'u1',
    item_id: 'item-1',
    action_type: 'click',
    scenario_id: 'home',
    timestamp,
    session_id: '',
    view_id: '',
    watch_duration: 0,
    completion_rate: 0,
    experiment_id: '',
    experiment_group: '',
    device_type: '',
    os: '',
    location: '',
    ip: '',
    current_url: '',
    properties: {},
    source: 'behaviors-api',
    captured_at: timestamp,
    ...overrides,
  };
}

import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/index.ts';
import { isReplayError } from '../../../src/errors/index.ts';
import type { BehaviorRecord } from '../../../src/uba/behavior-record.ts';
import { behaviorRecordProblem, readBehaviorRecord } from '../../../src/uba/behavior-record-check.ts';
import { readScriptReply, scriptCall } from '../../../src/uba/realtime/apply-script.ts';
import {
  DECAY_EPOCH_MS,
  decayedWeight,
  hotItemsKey,
  hotScore,
  keyUpdates,
  logAdd,
  minuteSuffix,
  realtimeMetricsKey,
  userRecentKey,
} from '../../../src/uba/realtime/keys.ts';
import { sampleBehavior } from '../../support/behaviors.ts';

const NOW = Date.UTC(2026, 10, 22, 13, 45, 30, 250);

function behavior(overrides: Partial<BehaviorRecord> = {}): BehaviorRecord {
  return sampleBehavior({
    event_id: '0b7e1f4e-8d6c-4c5e-9a51-2f0e5c3d7a10',
    timestamp: NOW,
    captured_at: NOW + 20,
    ...overrides,
  });
}

const rules = { weights: { click: 2, view: 1, impression: 0 }, halfLifeS: 3600 };

describe('realtime keys and scores', () => {
  it('names keys per tenant (the user key too) with a fixed-width UTC minute suffix', () => {
    expect(hotItemsKey(7, 'home')).toBe('hot:items:7:home');
    expect(realtimeMetricsKey(7, 'home', minuteSuffix(NOW))).toBe('metrics:realtime:7:home:202611221345');
    expect(userRecentKey(7, 'u1')).toBe('user:recent:7:u1');
    expect(userRecentKey(7, 'u1')).not.toBe(userRecentKey(8, 'u1'));
    expect(minuteSuffix(Date.UTC(2027, 0, 2, 3, 4, 59, 999))).toBe('202701020304');
  });

  it('scores in log2 space: a behaviour one half-life newer weighs twice, and sums never overflow', () => {
    const t = DECAY_EPOCH_MS + 10 * 3600_000;
    expect(hotScore(1, t, 3600)).toBeCloseTo(10, 12);
    expect(hotScore(2, t, 3600) - hotScore(2, t - 3600_000, 3600)).toBeCloseTo(1, 12);
    // Two equal behaviours make one of twice the weight.
    expect(logAdd(hotScore(1, t, 3600), hotScore(1, t, 3600))).toBeCloseTo(hotScore(2, t, 3600), 12);
    // Centuries after the epoch at a 1 s half-life: 2^(t/H) overflows a double, the log-space score does not.
    const far = Date.UTC(2290, 0, 1);
    const s = logAdd(hotScore(1, far, 1), hotScore(3, far, 1));
    expect(Number.isFinite(s)).toBe(true);
    expect(decayedWeight(s, far, 1)).toBeCloseTo(4, 9);
    expect(decayedWeight(hotScore(8, NOW - 2 * 3600_000, 3600), NOW, 3600)).toBeCloseTo(2, 9);
  });

  it('derives a minute count always, and a hot score and a recent item for weighted actions with an item', () => {
    expect(keyUpdates(behavior(), rules)).toEqual([
      {
        kind: 'hash',
        key: 'metrics:realtime:7:home:202611221345',
        field: 'click',
        minuteMs: Date.UTC(2026, 10, 22, 13, 45),
      },
      { kind: 'zset', key: 'hot:items:7:home', member: 'item-1', score: hotScore(2, NOW, 3600) },
      { kind: 'list', key: 'user:recent:7:u1', member: 'item-1' },
    ]);
    expect(keyUpdates(behavior({ action_type: 'impression' }), rules).map((u) => u.kind)).toEqual(['hash']);
    expect(keyUpdates(behavior({ action_type: '$pageview', item_id: '' }), rules).map((u) => u.kind)).toEqual(['hash']);
    expect(keyUpdates(behavior({ action_type: 'click', item_id: '' }), rules).map((u) => u.kind)).toEqual(['hash']);
  });

  it('never counts a behaviour later than capture accepted it (a client clock ahead)', () => {
    const ahead = behavior({ timestamp: NOW + 86_400_000 });
    const [hash, zset] = keyUpdates(ahead, rules);
    expect(hash).toMatchObject({ key: 'metrics:realtime:7:home:202611221345' });
    expect(zset).toMatchObject({ score: hotScore(2, NOW + 20, 3600) });
  });

  it('encodes a batch as KEYS and ARGV, each key once, and reads the replies back', () => {
    const limits = { offsetTtlS: 10, hotMaxItems: 5, hotTtlS: 20, metricsTtlS: 60, recentMax: 3, recentTtlS: 30 };
    const call = scriptCall(
      'realtime:offset:g:t:0',
      12,
      [
        { offset: 10, updates: keyUpdates(behavior(), rules) },
        { offset: 11, updates: keyUpdates(behavior({ item_id: 'item-2' }), rules) },
      ],
      limits,
    );
    expect(call.keys).toEqual([
      'realtime:offset:g:t:0',
      'metrics:realtime:7:home:202611221345',
      'hot:items:7:home',
      'user:recent:7:u1',
    ]);
    const minuteEnd = String(Date.UTC(2026, 10, 22, 13, 45) / 1000 + 60);
    expect(call.arguments.slice(0, 13)).toEqual([
      '12',
      '10',
      '5',
      '20',
      '3',
      '30',
      '3',
      'h',
      minuteEnd,
      'z',
      '0',
      'l',
      '0',
    ]);
    expect(call.arguments.slice(13, 15)).toEqual(['10', '3']);
    expect(call.arguments.slice(15, 18)).toEqual(['1', 'click', '1']);
    expect(Number(call.arguments[20])).toBe(hotScore(2, NOW, 3600)); // exact: shortest round-trip text
    expect(readScriptReply(['ok', 2, 0, 6, -1], call)).toEqual({
      status: 'ok',
      applied: 2,
      skipped: 0,
      updates: 6,
      previous: -1,
    });
    expect(readScriptReply(['conflict', 3], call)).toEqual({ status: 'conflict', keys: ['user:recent:7:u1'] });
    expect(() => readScriptReply('OK', call)).toThrow(/unexpected reply/);
  });
});

describe('reading a user_behaviors message', () => {
  const value = (v: unknown) => Buffer.from(JSON.stringify(v));

  it('takes a record within the bounds', () => {
    expect(readBehaviorRecord(value(behavior()))).toEqual(behavior());
    expect(behaviorRecordProblem(behavior({ timestamp: 1.5, source: 'posthog-js', action_type: '$pageview' }))).toBe(
      undefined,
    );
  });

  it.each([
    ['not JSON', Buffer.from('{"tenant_id": 7,')],
    ['an array', value([behavior()])],
    ['no event id', value({ ...behavior(), event_id: undefined })],
    ['a tenant that is not a positive integer', value(behavior({ tenant_id: 1.5 }))],
    ['an empty user', value(behavior({ user_id: '' }))],
    ['a user id too long', value(behavior({ user_id: 'u'.repeat(201) }))],
    ['an item id that is a number', value({ ...behavior(), item_id: 42 })],
    ['a timestamp past DateTime64', value(behavior({ timestamp: Date.UTC(2300, 0, 1) }))],
    ['a timestamp of 0', value(behavior({ timestamp: 0 }))],
    ['a completion rate above 1', value(behavior({ completion_rate: 1.5 }))],
    ['a property that is not a string', value({ ...behavior(), properties: { a: 1 } })],
    ['an unknown source', value({ ...behavior(), source: 'other' })],
    ['a missing field', value({ ...behavior(), scenario_id: undefined })],
  ])('refuses %s as behavior_record_invalid (poison)', (_what, raw) => {
    let caught: unknown;
    try {
      readBehaviorRecord(raw);
    } catch (error) {
      caught = error;
    }
    expect(isReplayError(caught, 'behavior_record_invalid')).toBe(true);
    expect((caught as { errorClass: string }).errorClass).toBe('poison');
  });
});

describe('realtime settings', () => {
  it('parses action weights, and refuses malformed ones as config_invalid', () => {
    const config = loadConfig({ HOME: '/nonexistent' });
    expect({ ...config.realtimeActionWeights }).toEqual({
      impression: 0,
      view: 1,
      click: 2,
      like: 3,
      share: 4,
      add_cart: 5,
      order: 10,
    });
    expect(config.realtimeTopic).toBe('user_behaviors');
    expect(config.realtimeGroupId).toBe('realtime-sink');
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379');
    expect({
      ...loadConfig({ HOME: '/nonexistent', REALTIME_ACTION_WEIGHTS: 'click=1.5, order = 7' }).realtimeActionWeights,
    }).toEqual({ click: 1.5, order: 7 });
    for (const bad of ['click', 'click=-1', 'click=x', '=2', 'click=1=2', 'click=1,,view=2']) {
      expect(() => loadConfig({ HOME: '/nonexistent', REALTIME_ACTION_WEIGHTS: bad })).toThrow(
        /REALTIME_ACTION_WEIGHTS/,
      );
    }
  });
});

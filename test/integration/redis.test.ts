import { describe, expect, inject, it } from 'vitest';
import { redisCommand } from '../../src/harness/redis.ts';

const redis = inject('stack').redis!;

describe('Redis (the real redis-server, started by the harness)', () => {
  it('answers on loopback only, keeps nothing on disk, and runs the scripts the realtime sink will need', async () => {
    expect(redis.url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
    expect(await redisCommand(redis.port, 'PING')).toBe('+PONG');
    // CONFIG GET answers an array: *2, $len, name, $len, value.
    const bind = await redisCommand(redis.port, 'CONFIG GET bind');
    expect(bind).toBe('*2');
    expect(
      await redisCommand(redis.port, 'EVAL "return redis.call(\'INCRBY\', KEYS[1], ARGV[1])" 1 harness:probe 5'),
    ).toMatch(/^:\d+$/);
  });
});

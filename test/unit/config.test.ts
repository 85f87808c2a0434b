import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configReferenceMarkdown, loadConfig } from '../../src/config/index.ts';
import { errorReferenceMarkdown, isReplayError } from '../../src/errors/index.ts';

describe('configuration', () => {
  it('applies documented defaults when nothing is set', () => {
    const config = loadConfig({ HOME: '/home/someone' });
    expect(config.logLevel).toBe('info');
    expect(config.kafkaHeapMb).toBe(512);
    expect(config.toolchainCache).toBe('/home/someone/.cache/replay-pipeline');
    expect(config.kafkaHome).toBe('/home/someone/.cache/replay-pipeline/kafka-4.1.1');
  });

  it('reports every invalid variable at once with a stable code', () => {
    try {
      loadConfig({ LOG_LEVEL: 'loud', REPLAY_KAFKA_HEAP_MB: '12abc' });
      expect.unreachable();
    } catch (error) {
      expect(isReplayError(error, 'config_invalid')).toBe(true);
      expect((error as Error).message).toContain('LOG_LEVEL');
      expect((error as Error).message).toContain('REPLAY_KAFKA_HEAP_MB');
    }
  });

  it('keeps docs/errors.md in step with the error catalogue', () => {
    const committed = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    expect(committed).toBe(errorReferenceMarkdown());
  });

  it('keeps docs/configuration.md in step with the settings table', () => {
    const committed = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    expect(committed).toBe(configReferenceMarkdown());
  });
});

import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.ts';
import { isReplayError } from '../../src/errors/index.ts';

describe('capture limit settings', () => {
  it('defaults', () => {
    const config = loadConfig({ HOME: '/nonexistent' });
    expect(config.captureMaxInflightBytes).toBe(256 * 1024 * 1024);
    expect(config.captureCorsOrigins).toEqual(['*']);
    expect(config.captureMaxConnections).toBe(4096);
    expect(config.captureHeadersTimeoutMs).toBe(5000);
    expect(config.captureRequestTimeoutMs).toBe(30_000);
    expect(config.captureKeepAliveTimeoutMs).toBe(5000);
  });

  it('CAPTURE_CORS_ORIGINS takes `*` and origins, and refuses anything else', () => {
    const origins = (raw: string) => loadConfig({ HOME: '/nonexistent', CAPTURE_CORS_ORIGINS: raw }).captureCorsOrigins;
    expect(origins(' https://app.example , http://localhost:3000,* ')).toEqual([
      'https://app.example',
      'http://localhost:3000',
      '*',
    ]);
    expect(origins('')).toEqual(['*']);
    for (const bad of ['https://app.example/path', 'app.example', 'https://a.example?x=1', 'ftp://a.example']) {
      let error: unknown;
      try {
        origins(bad);
      } catch (caught) {
        error = caught;
      }
      expect(isReplayError(error, 'config_invalid'), bad).toBe(true);
    }
  });
});

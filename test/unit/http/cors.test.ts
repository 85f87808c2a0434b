import { describe, expect, it } from 'vitest';
import { corsHeadersFor, corsPolicy } from '../../../src/http/server.ts';

describe('CORS policy', () => {
  it('`*` (the default): any origin, never with credentials', () => {
    for (const policy of [corsPolicy(true)!, corsPolicy({ origins: ['*'] })!]) {
      const any = { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'retry-after' };
      expect(corsHeadersFor(policy, 'https://shop.example')).toEqual(any);
      expect(corsHeadersFor(policy, undefined)).toEqual(any);
    }
  });

  it('a list: those origins reflected with credentials, others get nothing', () => {
    const policy = corsPolicy({ origins: ['https://app.example', 'http://localhost:3000'] })!;
    expect(corsHeadersFor(policy, 'https://app.example')).toEqual({
      vary: 'origin',
      'access-control-allow-origin': 'https://app.example',
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'retry-after',
    });
    expect(corsHeadersFor(policy, 'http://localhost:3000')['access-control-allow-origin']).toBe(
      'http://localhost:3000',
    );
    expect(corsHeadersFor(policy, 'https://evil.example')).toEqual({ vary: 'origin' });
    expect(corsHeadersFor(policy, 'https://app.example.evil.example')).toEqual({ vary: 'origin' });
    expect(corsHeadersFor(policy, undefined)).toEqual({ vary: 'origin' });
  });

  it('both: listed origins with credentials, any other with * and none', () => {
    const policy = corsPolicy({ origins: ['*', 'https://app.example'] })!;
    expect(corsHeadersFor(policy, 'https://app.example')['access-control-allow-credentials']).toBe('true');
    expect(corsHeadersFor(policy, 'https://other.example')).toEqual({
      vary: 'origin',
      'access-control-allow-origin': '*',
      'access-control-expose-headers': 'retry-after',
    });
  });

  it('off', () => {
    expect(corsPolicy(false)).toBeUndefined();
    expect(corsPolicy(undefined)).toBeUndefined();
  });
});

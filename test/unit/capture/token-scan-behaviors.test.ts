import { describe, expect, it } from 'vitest';
import { findToken } from '../../../src/capture/token-scan.ts';
import { readBehaviorsRequest } from '../../../src/uba/behaviors-request.ts';
import { readPosthogEventsRequest } from '../../../src/uba/posthog-events.ts';

/** A pretty-printed body: no `"token":` for the fast search to find, so the exact scan decides. */
const pretty = (value: unknown) => Buffer.from(JSON.stringify(value, null, 2).replaceAll('":', '" :'));

describe('the exact token scan finds the token where the behaviours readers read it', () => {
  const behaviours = [
    { user_id: 'u', item_id: 'i', action_type: 'click', timestamp: 1, extra_data: { token: 'decoy' } },
    { user_id: 'u', item_id: 'i', action_type: 'view', timestamp: 2, token: 'phc_item' },
  ];

  it("reads a behaviour's own token only with itemTokens (the /s/ scan is left as it was)", () => {
    const body = pretty(behaviours);
    expect(findToken(body, { itemTokens: true })).toBe('phc_item');
    expect(readBehaviorsRequest(body).token).toBe('phc_item');
    expect(findToken(body)).toBeUndefined();
  });

  it('skips a token key inside extra_data', () => {
    const body = pretty([behaviours[0]]);
    expect(findToken(body, { itemTokens: true })).toBeUndefined();
    expect(readBehaviorsRequest(body).token).toBeUndefined();
  });

  it("finds posthog-js's top-level api_key and an older SDK's properties.token", () => {
    const batch = pretty({ api_key: 'phc_top', batch: [{ event: 'e', properties: { token: 'phc_top' } }] });
    expect(findToken(batch)).toBe('phc_top');
    expect(readPosthogEventsRequest(batch).token).toBe('phc_top');
    const array = pretty([{ event: 'e', properties: { distinct_id: 'd', token: 'phc_props' } }]);
    expect(findToken(array)).toBe('phc_props');
    expect(readPosthogEventsRequest(array).token).toBe('phc_props');
  });
});

import type { Server } from 'node:http';
import type Kafka from 'node-rdkafka';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../../../src/config/index.ts';
import { demoPageHtml, serveHtml } from '../../../src/dev/demo-page.ts';
import { launchChromium } from '../../../src/harness/chromium.ts';
import { topicNames } from '../../../src/kafka/topics.ts';
import type { Team } from '../../../src/teams/team-store.ts';
import type { BehaviorRecord } from '../../../src/uba/behavior-record.ts';
import { startTestCapture, type TestCapture } from '../../support/capture.ts';
import { headerOf, readTopic } from '../../support/kafka.ts';
import { metricValue, scrape } from '../../support/metrics.ts';
import { flushPosthog } from '../../support/posthog-page.ts';

const stack = inject('stack');

describe('the real posthog-js SDK sends its analytics events to capture, and they land as behaviours (Chromium)', () => {
  let capture: TestCapture;
  let team: Team;
  let browser: Browser;
  let page: { url: string; server: Server };

  beforeAll(async () => {
    capture = await startTestCapture({ brokers: stack.kafka!.brokers, databaseUrl: stack.postgres!.url });
    team = await capture.createTeam();
    page = await serveHtml(demoPageHtml({ captureUrl: capture.url, token: team.apiToken }));
    browser = await launchChromium(loadConfig());
  });
  afterAll(async () => {
    await browser?.close();
    page?.server.close();
    await capture?.stop();
  });

  it('$pageview and a custom event carry the session id of the recording and the page URL', async () => {
    const tab = await browser.newPage();
    const answers: Promise<{ status: number; body: unknown }>[] = [];
    tab.on('response', (response) => {
      if (response.request().method() === 'POST' && new URL(response.url()).pathname.startsWith('/e')) {
        answers.push(
          response
            .text()
            .then((text) => ({ status: response.status(), body: JSON.parse(text) as unknown }))
            .catch((error: Error) => ({ status: response.status(), body: `unreadable: ${error.message}` })),
        );
      }
    });
    await tab.goto(page.url);
    await tab.waitForFunction('window.posthog && window.posthog.__loaded', undefined, { timeout: 20_000 });
    await tab.evaluate(`posthog.capture('added to cart', { sku: 'A-1', price: 9.5, tags: ['red'] })`);
    await flushPosthog(tab);
    const sessionId = (await tab.evaluate('posthog.get_session_id()')) as string;
    const distinctId = (await tab.evaluate('posthog.get_distinct_id()')) as string;

    const mine = (got: Kafka.Message[]) =>
      got
        .filter((m) => headerOf(m, 'tenant_id') === String(team.id))
        .map((m) => JSON.parse(m.value!.toString('utf8')) as BehaviorRecord);
    const has = (records: BehaviorRecord[], name: string) => records.some((r) => r.action_type === name);
    let records: BehaviorRecord[] = [];
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const messages = await readTopic(stack.kafka!.brokers, topicNames.userBehaviors, {
        done: (got) => has(mine(got), '$pageview') && has(mine(got), 'added to cart'),
        timeoutMs: 10_000,
      });
      records = mine(messages);
      if (has(records, '$pageview') && has(records, 'added to cart')) break;
      await flushPosthog(tab);
    }

    const pageview = records.find((r) => r.action_type === '$pageview');
    const cart = records.find((r) => r.action_type === 'added to cart');
    expect(pageview).toMatchObject({
      source: 'posthog-js',
      tenant_id: team.id,
      user_id: distinctId,
      session_id: sessionId,
      current_url: page.url,
    });
    expect(pageview!.event_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/); // posthog-js's own UUIDv7
    expect(pageview!.properties.$lib).toBe('web');
    expect(pageview!.properties.token).toBeUndefined();
    expect(pageview!.properties.distinct_id).toBeUndefined();
    expect(Math.abs(pageview!.timestamp - Date.now())).toBeLessThan(120_000);
    expect(cart).toMatchObject({ user_id: distinctId, session_id: sessionId });
    expect(cart!.properties).toMatchObject({ sku: 'A-1', price: '9.5', tags: '["red"]' });
    // Every analytics request was answered 200 with nothing dropped: capture reads what posthog-js sends. (The
    // answers to sendBeacon, on the simulated unload, have no body the page can read: the metrics tell for those.)
    const seen = await Promise.all(answers);
    expect(seen.length).toBeGreaterThan(0);
    for (const answer of seen) {
      expect(answer.status).toBe(200);
      if (typeof answer.body !== 'string') expect(answer.body).toEqual({ status: 1 });
    }
    expect(seen.some((answer) => typeof answer.body !== 'string')).toBe(true);
    const metrics = await scrape(capture.url);
    expect(metrics).not.toMatch(/^capture_behaviors_rejected_total\{/m);
    expect(metricValue(metrics, 'capture_behaviors_total', { source: 'posthog-js' })).toBeGreaterThanOrEqual(2);
  });
});

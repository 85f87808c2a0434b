import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { compressLz4Frame } from '../../../src/codec/lz4-frames.ts';
import { loadConfig } from '../../../src/config/index.ts';
import { freePort } from '../../../src/harness/ports.ts';
import { type LocalPrometheus, startLocalPrometheus } from '../../../src/harness/prometheus.ts';
import { topicNames } from '../../../src/kafka/topics.ts';
import { exposedMetricNames } from '../../../src/metrics/catalogue.ts';
import { encodeRecordingMessage } from '../../../src/recordings/message-codec.ts';
import { freshBucketStore, startTestBlobConsumer } from '../../support/blob-consumer.ts';
import { postRaw, sampleRrwebEvents, snapshotBody, startTestCapture, type TestCapture } from '../../support/capture.ts';
import { dashboardQueries, loadDashboards } from '../../support/dashboard.ts';
import { produceAll } from '../../support/kafka.ts';
import { eventually } from '../../support/kafka-offsets.ts';
import { startSinkAndApi } from '../../support/pipeline.ts';
import { sampleHeader } from '../../support/recordings.ts';

const stack = inject('stack');
const brokers = stack.kafka!.brokers;
const alertsFile = join(import.meta.dirname, '..', '..', '..', 'charts', 'replay-pipeline', 'files', 'alerts.yml');

interface AlertRule {
  readonly alert: string;
  readonly expr: string;
}

/**
 * A real Prometheus (Debian's server) scraping a running stack (capture, blob consumer, sink, API) every second with
 * the chart's alert rules loaded: the metric names each service exposes are the catalogue's, every alert rule and
 * every dashboard query evaluates on the real series, and the alert expressions react to real events.
 */
describe('Prometheus scraping the running pipeline', () => {
  let dir: string;
  let prometheus: LocalPrometheus;
  let capture: TestCapture;
  let targets: { service: string; url: string }[];
  let deadTarget: string;
  let rules: AlertRule[];
  const stops: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'replay-scrape-'));
    capture = await startTestCapture({ brokers, databaseUrl: stack.postgres!.url });
    stops.push(() => capture.stop());
    const store = await freshBucketStore();
    const consumer = await startTestBlobConsumer({ brokers, topic: topicNames.recordings, store });
    stops.push(() => consumer.stop());
    const read = await startSinkAndApi({ brokers, postgresUrl: stack.postgres!.url, store, dir: join(dir, 'read') });
    stops.push(() => read.stop());
    targets = [
      { service: 'capture', url: capture.url },
      { service: 'blob-consumer', url: consumer.http.url },
      { service: 'clickhouse-sink', url: read.sinkUrl },
      { service: 'replay-api', url: read.apiUrl },
    ];
    // A target nothing listens on: what the target-down alert is for.
    deadTarget = `127.0.0.1:${await freePort()}`;
    const groups = (parse(await readFile(alertsFile, 'utf8')) as { groups: { rules: AlertRule[] }[] }).groups;
    rules = groups.flatMap((group) => group.rules);
    prometheus = await startLocalPrometheus(loadConfig(), {
      dir: join(dir, 'prometheus'),
      job: 'replay-pipeline',
      targets: [
        ...targets.map(({ service, url }) => ({
          target: new URL(url).host,
          labels: { pipeline: 'replay-pipeline', component: service },
        })),
        { target: deadTarget, labels: { pipeline: 'replay-pipeline', component: 'gone' } },
      ],
      ruleFiles: [alertsFile],
    });
    stops.push(() => prometheus.stop());
    await eventually(
      async () => (await prometheus.query('up{pipeline="replay-pipeline"}')).length === targets.length + 1,
      'the first scrape of every target',
    );
  });
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('finds each service exposing exactly the metrics the catalogue (docs/metrics.md) lists for it', async () => {
    for (const { service, url } of targets) {
      const text = await (await fetch(`${url}/metrics`)).text();
      const exposed = [...new Set([...text.matchAll(/^# HELP (\S+)/gm)].map((match) => match[1]))].sort();
      expect(exposed, service).toEqual(await exposedMetricNames(service));
      expect(text).toContain(`service="${service}"`);
    }
  });

  it('sees every service up and ready, and the dead target as down through the target-down alert', async () => {
    const up = await prometheus.query('up{pipeline="replay-pipeline"} == 1');
    expect(up.map((s) => s.metric.component).sort()).toEqual(targets.map((t) => t.service).sort());
    const ready = await prometheus.query('service_ready{pipeline="replay-pipeline"}');
    expect(Object.fromEntries(ready.map((s) => [s.metric.service, s.value]))).toEqual(
      Object.fromEntries(targets.map((t) => [t.service, 1])),
    );
    const down = await prometheus.query(ruleExpr('ReplayTargetDown'));
    expect(down.map((s) => s.metric.instance)).toEqual([deadTarget]);
  });

  it('evaluates every alert rule on the real series without an error', async () => {
    const groups = await eventually(async () => {
      const response = await fetch(`${prometheus.url}/api/v1/rules?type=alert`);
      const body = (await response.json()) as {
        data: { groups: { rules: { name: string; health: string; lastError?: string; lastEvaluation: string }[] }[] };
      };
      const evaluated = body.data.groups.flatMap((g) => g.rules);
      return evaluated.every((rule) => !rule.lastEvaluation.startsWith('0001')) ? evaluated : undefined;
    }, 'every rule evaluated once');
    expect(groups.map((rule) => rule.name).sort()).toEqual(rules.map((rule) => rule.alert).sort());
    expect(groups.filter((rule) => rule.health !== 'ok').map((rule) => `${rule.name}: ${rule.lastError}`)).toEqual([]);
  });

  it('answers every dashboard query on the real series', async () => {
    for (const { dashboard } of loadDashboards()) {
      for (const query of dashboardQueries(dashboard, '1m')) {
        await expect(prometheus.query(query.resolved), `panel ${query.panel.id}${query.refId}`).resolves.toBeDefined();
      }
    }
  });

  it('shows lag back at 0 and the throughput counted once a burst of recordings is consumed', async () => {
    const team = await capture.createTeam();
    const consumed = () =>
      prometheus.query('sum(consumer_messages_total{pipeline="replay-pipeline", service="blob-consumer"})');
    const before = (await consumed())[0]?.value ?? 0;
    const sessions = 40;
    for (let i = 0; i < sessions; i++) {
      const body = snapshotBody(team.apiToken, randomUUID(), sampleRrwebEvents(Date.now() - 60_000));
      expect((await postRaw(`${capture.url}/s/`, Buffer.from(JSON.stringify(body)))).status).toBe(200);
    }
    await eventually(async () => ((await consumed())[0]?.value ?? 0) >= before + sessions, 'the burst consumed');
    // The lag panel's query and the lag alert's expression (threshold at 0) on the consumer's partitions.
    const lag = dashboardQueries(loadDashboards()[0]!.dashboard).find((q) =>
      q.expr.startsWith('max by (service, topic, partition) (consumer_lag_messages'),
    );
    expect(lag).toBeDefined();
    await eventually(async () => {
      const partitions = (await prometheus.query(lag!.resolved)).filter((s) => s.metric.service === 'blob-consumer');
      return partitions.length > 0 && partitions.every((s) => s.value === 0);
    }, 'the lag of every partition back at 0');
    expect(await prometheus.query(withThreshold(ruleExpr('ReplayConsumerLagHigh'), 0))).toEqual([]);
    // Capture's own count of the burst, from its next scrape (targets are scraped at different moments).
    await eventually(async () => {
      const capturedOk = await prometheus.query(
        'sum(http_requests_total{pipeline="replay-pipeline", service="capture", route="/s", status="200"})',
      );
      return (capturedOk[0]?.value ?? 0) >= sessions;
    }, "capture's 200s counted");
  });

  it('raises the DLQ alert expression when a poison message is quarantined', async () => {
    const quarantined = () =>
      prometheus.query(
        'sum(consumer_quarantined_total{pipeline="replay-pipeline", service="blob-consumer", reason="message_header_invalid"}) or vector(0)',
      );
    const before = (await quarantined())[0]?.value ?? 0;
    const t = Date.now();
    await produceAll(brokers, [
      {
        topic: topicNames.recordings,
        key: `scrape-poison-${randomUUID()}`,
        value: encodeRecordingMessage(
          sampleHeader({ sessionId: randomUUID(), firstTimestamp: -1 } as never),
          compressLz4Frame(Buffer.from(`["w1",${JSON.stringify({ type: 3, timestamp: t, data: { source: 1 } })}]\n`)),
        ),
      },
    ]);
    await eventually(async () => ((await quarantined())[0]?.value ?? 0) === before + 1, 'the poison quarantined');
    const firing = await eventually(async () => {
      const series = await prometheus.query(withThreshold(ruleExpr('ReplayDlqGrowing'), 0));
      return series.find((s) => s.metric.service === 'blob-consumer' && s.metric.reason === 'message_header_invalid');
    }, 'the DLQ alert expression over its threshold');
    expect(firing.value).toBeGreaterThan(0);
  });

  function ruleExpr(name: string): string {
    const rule = rules.find((r) => r.alert === name);
    if (!rule) throw new Error(`no alert ${name} in ${alertsFile}`);
    return rule.expr;
  }
});

/** The alert expression with its final `> N` threshold moved to `threshold`, to see it react to a small event. */
function withThreshold(expr: string, threshold: number): string {
  const moved = expr.trim().replace(/>\s*[\d.e+]+$/, `> ${threshold}`);
  if (moved === expr.trim()) throw new Error(`no final threshold in ${expr}`);
  return moved;
}

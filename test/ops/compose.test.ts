import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runTool } from './tools.ts';

// docker-compose.yml as `docker compose` would load it (compose-go: schema, interpolation from .env, merges), then
// the stack's own rules checked on the resolved project.

interface Service {
  image?: string;
  build?: unknown;
  ports?: { host_ip?: string; published?: string; target: number }[];
  healthcheck?: { test?: string[]; disable?: boolean };
  depends_on?: Record<string, { condition: string }>;
  logging?: { driver?: string; options?: Record<string, string> };
  environment?: Record<string, string | null>;
  restart?: string;
  volumes?: { type: string; source?: string; target: string }[];
}

const root = join(import.meta.dirname, '..', '..');
const oneShot = new Set(['migrate', 'minio-init']);
let services: Record<string, Service>;

async function loadCompose(dir: string) {
  return runTool('compose-check', [join(dir, 'docker-compose.yml')]);
}

beforeAll(async () => {
  const result = await loadCompose(root);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  services = JSON.parse(result.stdout).services;
});

describe('docker-compose.yml', () => {
  it('brings up the whole stack: dependencies, monitoring and every pipeline role', () => {
    expect(Object.keys(services).sort()).toEqual(
      [
        'api',
        'behaviors-sink',
        'blob-consumer',
        'blob-consumer-overflow',
        'capture',
        'clickhouse',
        'grafana',
        'kafka',
        'migrate',
        'minio',
        'minio-init',
        'postgres',
        'prometheus',
        'realtime-sink',
        'redis',
        'sink',
      ].sort(),
    );
    const roles = Object.entries(services)
      .filter(([, s]) => s.build !== undefined)
      .map(([name, s]) => [name, (s as { command?: string[] }).command?.[0]]);
    expect(Object.fromEntries(roles)).toEqual({
      migrate: 'migrate',
      capture: 'capture',
      'blob-consumer': 'blob-consumer',
      'blob-consumer-overflow': 'blob-consumer',
      sink: 'sink',
      'behaviors-sink': 'behaviors-sink',
      'realtime-sink': 'realtime-sink',
      api: 'api',
    });
  });

  it('pins every image tag and binds every published port to 127.0.0.1', () => {
    for (const [name, service] of Object.entries(services)) {
      expect(service.image, name).toMatch(/^[a-z0-9./-]+:[A-Za-z0-9._-]+$/);
      expect(service.image, name).not.toMatch(/:latest$/);
      for (const port of service.ports ?? []) expect(port.host_ip, `${name} port ${port.target}`).toBe('127.0.0.1');
    }
  });

  it('orders start-up on health: every dependency is healthy or has completed', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        const expected = oneShot.has(dependency) ? 'service_completed_successfully' : 'service_healthy';
        expect(condition, `${name} → ${dependency}`).toBe(expected);
        if (!oneShot.has(dependency)) expect(services[dependency]?.healthcheck?.test, dependency).toBeDefined();
      }
      if (!oneShot.has(name)) expect(service.healthcheck?.test, `${name} healthcheck`).toBeDefined();
      expect(service.restart, name).toBe(oneShot.has(name) ? 'no' : 'unless-stopped');
    }
  });

  it('rotates every container log', () => {
    for (const [name, service] of Object.entries(services)) {
      expect(service.logging?.driver, name).toBe('json-file');
      expect(Number.parseInt(service.logging?.options?.['max-file'] ?? '', 10), name).toBeGreaterThan(0);
      expect(service.logging?.options?.['max-size'], name).toMatch(/^\d+[kmg]$/);
    }
  });

  it('gives the writers and the reader of recordings the same S3 endpoint, bucket, prefix and credentials', () => {
    const s3 = (name: string) =>
      Object.fromEntries(
        Object.entries(services[name]?.environment ?? {}).filter(([key]) =>
          /^(S3_|BLOB_STORE$|BLOB_PREFIX$)/.test(key),
        ),
      );
    const writer = s3('blob-consumer');
    expect(writer.BLOB_STORE).toBe('s3');
    expect(writer.S3_ENDPOINT).toBe('http://minio:9000');
    expect(writer.S3_SECRET_ACCESS_KEY).toBeTruthy();
    expect(s3('blob-consumer-overflow')).toEqual(writer);
    expect(s3('api')).toEqual(writer);
    // migrate applies the lifecycle rules to that same bucket and prefix.
    expect(s3('migrate')).toEqual(writer);
    // The bucket the init creates and the user it adds are those the services use.
    const init = services['minio-init']?.environment ?? {};
    expect(init.S3_BUCKET).toBe(writer.S3_BUCKET);
    expect(init.S3_ACCESS_KEY_ID).toBe(writer.S3_ACCESS_KEY_ID);
  });

  it('keeps each blob consumer on its own spool volume with a stable identity', () => {
    const spool = (name: string) => services[name]?.volumes?.find((v) => v.target === '/var/lib/replay');
    expect(spool('blob-consumer')?.type).toBe('volume');
    expect(spool('blob-consumer-overflow')?.type).toBe('volume');
    expect(spool('blob-consumer')?.source).not.toBe(spool('blob-consumer-overflow')?.source);
    for (const name of ['blob-consumer', 'blob-consumer-overflow']) {
      const service = services[name] as Service & { hostname?: string };
      expect(service.hostname, name).toBe(name);
      expect(service.environment?.KAFKA_GROUP_INSTANCE_ID, name).toBe(name);
    }
    expect(services['blob-consumer-overflow']?.environment?.BLOB_TOPIC).toBe(
      'session_recording_snapshot_item_overflow',
    );
  });

  it('takes every tunable from .env, each documented there and each used', () => {
    const compose = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
    const used = new Set([...compose.matchAll(/\$\{([A-Z0-9_]+)[^}]*\}/g)].map((m) => m[1] ?? ''));
    const lines = readFileSync(join(root, '.env'), 'utf8').split('\n');
    const defined = new Map<string, boolean>();
    lines.forEach((line, i) => {
      const name = line.match(/^([A-Z0-9_]+)=/)?.[1];
      if (!name) return;
      // Documented: a comment right above it, or above the run of variables it belongs to.
      let j = i - 1;
      while (j >= 0 && /^[A-Z0-9_]+=/.test(lines[j] ?? '')) j--;
      defined.set(name, (lines[j] ?? '').startsWith('#'));
    });
    expect([...used].filter((name) => !defined.has(name))).toEqual([]);
    expect([...defined.keys()].filter((name) => !used.has(name))).toEqual([]);
    expect([...defined].filter(([, documented]) => !documented).map(([name]) => name)).toEqual([]);
  });

  it('has Prometheus scrape every pipeline service with the label the alert rules select', () => {
    const config = parse(readFileSync(join(root, 'deploy/compose/prometheus.yml'), 'utf8')) as {
      scrape_configs: { job_name: string; static_configs: { targets: string[]; labels?: Record<string, string> }[] }[];
    };
    const pipeline = config.scrape_configs.find((job) => job.job_name === 'replay-pipeline');
    const targets = pipeline?.static_configs.flatMap((group) => {
      expect(group.labels?.pipeline).toBe('replay-pipeline');
      return group.targets;
    });
    const expected = Object.entries(services)
      .filter(([name, s]) => s.build !== undefined && !oneShot.has(name))
      .map(([name]) => `${name}:${portOf(name)}`);
    expect(targets?.sort()).toEqual(expected.sort());
  });

  it('passes promtool check config with the chart alert rules beside it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'compose-prometheus-'));
    cpSync(join(root, 'deploy/compose/prometheus.yml'), join(dir, 'prometheus.yml'));
    cpSync(join(root, 'charts/replay-pipeline/files/alerts.yml'), join(dir, 'alerts.yml'));
    const result = await runTool('promtool', ['check', 'config', join(dir, 'prometheus.yml')]);
    expect(result.stdout + result.stderr).toContain('SUCCESS');
    expect(result.code).toBe(0);
  });

  it('refuses a compose file with an unknown key, naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'compose-bad-'));
    cpSync(join(root, '.env'), join(dir, '.env'));
    const compose = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
    writeFileSync(join(dir, 'docker-compose.yml'), compose.replace('  capture:\n', '  capture:\n    imagee: typo\n'));
    const result = await loadCompose(dir);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('imagee');
  });

  it('refuses a compose file that uses a variable .env does not set', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'compose-unset-'));
    cpSync(join(root, '.env'), join(dir, '.env'));
    const compose = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
    writeFileSync(join(dir, 'docker-compose.yml'), compose.replaceAll('{LOG_LEVEL}', '{LOG_LEVLE}'));
    const result = await loadCompose(dir);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('LOG_LEVLE');
  });
});

/** The health/metrics port of a pipeline role, as the image's settings give it (docs/configuration.md). */
function portOf(service: string): number {
  const ports: Record<string, number> = {
    capture: 8010,
    'blob-consumer': 8011,
    'blob-consumer-overflow': 8011,
    sink: 8012,
    api: 8013,
    'realtime-sink': 8016,
    'behaviors-sink': 8017,
  };
  const port = ports[service];
  if (port === undefined) throw new Error(`no port known for ${service}`);
  return port;
}

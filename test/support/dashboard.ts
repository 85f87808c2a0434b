import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// The Grafana dashboards of the chart as tests see them: their shape, their panels and their queries as Prometheus
// receives them from Grafana. Used by the structural check (test/ops/dashboard.test.ts) and the scrape test
// (test/integration/ops/prometheus-scrape.test.ts).

export const dashboardsDir = join(import.meta.dirname, '..', '..', 'charts', 'replay-pipeline', 'files', 'dashboards');

export interface DataSourceRef {
  readonly type?: string;
  readonly uid?: string;
}
export interface DashboardTarget {
  readonly refId: string;
  readonly expr?: string;
  readonly datasource?: DataSourceRef;
}
export interface GridPos {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}
export interface DashboardPanel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly gridPos: GridPos;
  readonly datasource?: DataSourceRef;
  readonly targets?: readonly DashboardTarget[];
  readonly fieldConfig?: { readonly defaults?: { readonly unit?: string } };
  /** A collapsed row's panels. */
  readonly panels?: readonly DashboardPanel[];
}
export interface DashboardVariable {
  readonly type: string;
  readonly name: string;
  readonly query?: string | { readonly query: string };
  readonly definition?: string;
  readonly datasource?: DataSourceRef;
}
export interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly schemaVersion: number;
  readonly refresh: string;
  readonly time: { readonly from: string; readonly to: string };
  readonly templating: { readonly list: readonly DashboardVariable[] };
  readonly panels: readonly DashboardPanel[];
}

/** One dashboard file of charts/replay-pipeline/files/dashboards/. */
export function loadDashboard(file: string): Dashboard {
  return JSON.parse(readFileSync(join(dashboardsDir, file), 'utf8')) as Dashboard;
}

/** Every dashboard file of charts/replay-pipeline/files/dashboards/. */
export function loadDashboards(): { file: string; dashboard: Dashboard }[] {
  return readdirSync(dashboardsDir)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => ({ file, dashboard: loadDashboard(file) }));
}

/** Every panel, those inside collapsed rows included. */
export function allPanels(dashboard: Dashboard): DashboardPanel[] {
  return dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
}

/** A variable's query text, whichever of its two forms the dashboard uses. */
export function variableQuery(variable: DashboardVariable): string {
  return typeof variable.query === 'string' ? variable.query : (variable.query?.query ?? '');
}

/** Grafana variable references: $name, ${name}, ${name:format}, [[name]], [[name:format]]. */
export const grafanaVariableReference = /\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]/g;

/** The names of the variables a text refers to, in order, repeats included. */
export function variableReferences(text: string): string[] {
  return [...text.matchAll(grafanaVariableReference)].map((match) => (match[1] ?? match[2] ?? match[3])!);
}

/** Grafana's builtin variables as it sets them for a one-hour range, with the given `$__rate_interval`. */
export function builtinVariableValues(rateInterval = '5m'): Readonly<Record<string, string>> {
  return {
    __rate_interval: rateInterval,
    __interval: '1m',
    __interval_ms: '60000',
    __range: '1h',
    __range_s: '3600',
    __range_ms: '3600000',
  };
}

/** The builtin variables a query may use without the dashboard defining them. */
export const builtinVariables: ReadonlySet<string> = new Set(Object.keys(builtinVariableValues()));

/**
 * A query as Prometheus would receive it from Grafana: the builtins as Grafana sets them (`$__rate_interval` as given)
 * and every dashboard variable matching anything (`.*`, inside the regex matchers the dashboard uses them in).
 */
export function resolveGrafanaVariables(expr: string, rateInterval = '5m'): string {
  const builtins = builtinVariableValues(rateInterval);
  return expr.replace(grafanaVariableReference, (_all, a?: string, b?: string, c?: string) => {
    const name = (a ?? b ?? c)!;
    return Object.hasOwn(builtins, name) ? builtins[name]! : '.*';
  });
}

export interface DashboardQuery {
  readonly panel: DashboardPanel;
  readonly refId: string;
  /** The target's expression as the dashboard has it (`''` when it has none). */
  readonly expr: string;
  /** The expression as Prometheus receives it (resolveGrafanaVariables). */
  readonly resolved: string;
}

/** Every target of every panel (rows' nested panels included), with its expression resolved. */
export function dashboardQueries(dashboard: Dashboard, rateInterval = '5m'): DashboardQuery[] {
  return allPanels(dashboard).flatMap((panel) =>
    (panel.targets ?? []).map((target) => {
      const expr = target.expr ?? '';
      return { panel, refId: target.refId, expr, resolved: resolveGrafanaVariables(expr, rateInterval) };
    }),
  );
}

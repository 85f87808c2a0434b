import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { metricCatalogue, metricCatalogueMarkdown } from '../../src/metrics/catalogue.ts';

const srcDir = new URL('../../src/', import.meta.url).pathname;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(dir, entry.name))
      : entry.name.endsWith('.ts')
        ? [join(dir, entry.name)]
        : [],
  );
}

describe('metrics catalogue', () => {
  it('keeps docs/metrics.md in step with the metric factories', async () => {
    const committed = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
    expect(committed).toBe(await metricCatalogueMarkdown());
  });

  it('lists every metric the source defines', async () => {
    const catalogue = await metricCatalogue();
    const listed = new Set(
      [...catalogue.http, ...Object.values(catalogue.services).flat()].map((metric) => metric.name),
    );
    const defined = sourceFiles(srcDir).flatMap((file) =>
      [
        ...readFileSync(file, 'utf8').matchAll(/new (?:Counter|Gauge|Histogram|Summary)\(\{\s*name: '([a-z0-9_]+)'/g),
      ].map((match) => `${match[1]} (${file.slice(srcDir.length)})`),
    );
    expect(defined.length).toBeGreaterThan(50);
    expect(defined.filter((entry) => !listed.has(entry.split(' ')[0] ?? ''))).toEqual([]);
  });

  it('names metrics by Prometheus conventions, each with its meaning', async () => {
    const catalogue = await metricCatalogue();
    for (const metric of [...catalogue.http, ...Object.values(catalogue.services).flat()]) {
      expect(metric.help.length, metric.name).toBeGreaterThan(10);
      expect(metric.name).toMatch(/^[a-z][a-z0-9_]*$/);
      if (metric.type === 'counter') expect(metric.name).toMatch(/_total$/);
      else expect(metric.name).not.toMatch(/_total$/);
      if (metric.type === 'histogram') expect(metric.name).toMatch(/_(seconds|bytes|messages)$/);
      expect(metric.labels).not.toContain('service');
    }
  });
});

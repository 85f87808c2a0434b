import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const resultsDir = fileURLToPath(new URL('../results/', import.meta.url));

/** The `--out FILE` line of a bench's usage, its description starting at `column` like the other options'. */
export function outOptionUsage(name: string, column: number): string {
  return `${'  --out FILE'.padEnd(column)}write the JSON figures to FILE (default bench/results/${name}-<time>.json)`;
}

/**
 * Writes a bench's figures as JSON to `out` (the --out option; relative to the working directory) or, when it is
 * empty, to bench/results/<name>-<time>.json. Returns the path written.
 */
export async function writeBenchResult(name: string, result: unknown, out = ''): Promise<string> {
  const file =
    out === '' ? resolve(resultsDir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`) : resolve(out);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  return file;
}

// Preloaded with `node --import ./test/unit/cli/record-modules.ts` by the CLI tests: records every module the process
// resolves (ESM imports and CommonJS requires alike, through a synchronous module hook) and, on Linux, every shared
// library it maps, and writes both as JSON to $RECORD_MODULES_FILE when the process exits.
import { readFileSync, writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const resolved = new Set<string>();
registerHooks({
  resolve(specifier, context, nextResolve) {
    const result = nextResolve(specifier, context);
    resolved.add(result.url);
    return result;
  },
});

/** Paths of the mapped files of this process (native addons, shared libraries); undefined where /proc is missing. */
function mappedFiles(): string[] | undefined {
  try {
    const lines = readFileSync('/proc/self/maps', 'utf8').split('\n');
    return [...new Set(lines.map((line) => line.split(/\s+/)[5] ?? '').filter((path) => path.startsWith('/')))];
  } catch {
    return undefined;
  }
}

process.on('exit', () => {
  const file = process.env.RECORD_MODULES_FILE;
  if (file) writeFileSync(file, JSON.stringify({ modules: [...resolved], mapped: mappedFiles() }));
});

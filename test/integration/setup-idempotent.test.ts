import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * `scripts/setup` on a checkout it already set up (scripts/test runs it before vitest, so this is its second run):
 * it installs nothing and writes no tracked file, and package-lock.json is what `npm install` writes for
 * package.json. A drifted lock used to be rewritten by the first run, so the second run (whose stamp hashes
 * package.json and the lock) reinstalled and rebuilt node-rdkafka for minutes and left the git tree dirty.
 */
const root = resolve(import.meta.dirname, '../..');
/** The files npm reads, or could write, and the scripts that install. */
const watched = ['package.json', 'package-lock.json', '.npmrc', 'scripts'];

interface Run {
  readonly code: number | null;
  readonly output: string;
  readonly ms: number;
}

/** Runs a command in the checkout with stdout and stderr merged; killed (code null) after `timeoutMs`. */
function run(command: string, args: string[], timeoutMs: number): Promise<Run> {
  const started = Date.now();
  return new Promise((done, fail) => {
    const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, output, ms: Date.now() - started });
    });
  });
}

/** What setup must leave alone: git's view of the watched paths, and the exact bytes npm reads. */
async function snapshot() {
  const status = await run('git', ['status', '--porcelain', '--untracked-files=all', '--', ...watched], 30_000);
  expect(status.code, status.output).toBe(0);
  const hashes: Record<string, string> = {};
  for (const file of ['package.json', 'package-lock.json']) {
    hashes[file] = createHash('sha256')
      .update(await readFile(join(root, file)))
      .digest('hex');
  }
  return { status: status.output, hashes };
}

describe('scripts/setup on a set-up checkout', () => {
  it('installs nothing, takes seconds, and leaves package.json, package-lock.json and the scripts untouched', async () => {
    const before = await snapshot();
    // Bounded: a warm run takes well under a second; an npm install (the bug) takes minutes.
    const setup = await run('bash', ['scripts/setup'], 240_000);
    expect(setup.code, `scripts/setup failed or timed out:\n${setup.output}`).toBe(0);
    expect(setup.output, 'a second scripts/setup run must not install npm packages').not.toMatch(
      /installing npm packages|rebuilding node-rdkafka/,
    );
    expect(setup.output).not.toMatch(/warning/i);
    expect(setup.output).toMatch(/^\[setup\] ready:/m);
    expect(setup.ms, setup.output).toBeLessThan(60_000);
    expect(await snapshot(), 'scripts/setup modified files npm reads or the scripts').toEqual(before);
  }, 300_000);

  it('finds package-lock.json in sync with package.json (npm would not rewrite it), offline', async () => {
    // --offline: with the npm cache setup filled this needs no network, and no network is ever tried.
    const check = await run('bash', ['scripts/check-lock', '--offline'], 60_000);
    expect(check.code, check.output).toBe(0);
  });
});

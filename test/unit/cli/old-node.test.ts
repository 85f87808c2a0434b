import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');

/** A Node older than 22.18 on this machine (Debian's system Node is 20), if there is one. */
function oldNode(): string | undefined {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node']) {
    try {
      const version = execFileSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim();
      const [major = 0, minor = 0] = version.split('.').map(Number);
      if (major < 22 || (major === 22 && minor < 18)) return candidate;
    } catch {
      // not there
    }
  }
  return undefined;
}

describe('the CLI entry', () => {
  const old = oldNode();

  it.skipIf(old === undefined)('tells an old Node, in one sentence, to use scripts/replay', () => {
    const result = spawnSync(old!, ['bin/replay.js', '--help'], { cwd: root, encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^replay needs Node 22\.18 or newer .* run it as scripts\/replay <command>/);
  });

  it('runs from any shell through scripts/replay, on the Node that setup installed', () => {
    // A shell whose PATH holds only the system directories (so `node` is the system one, or none).
    const result = spawnSync('bash', ['scripts/replay', '--help'], {
      cwd: root,
      encoding: 'utf8',
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: process.env.HOME ?? '/root' },
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^usage: replay <command>/m);
    expect(result.stdout).toContain('delete');
  });
});

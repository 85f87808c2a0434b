import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTool } from './tools.ts';

const root = join(import.meta.dirname, '..', '..');

describe('Dockerfile', () => {
  it('passes hadolint', async () => {
    const result = await runTool('hadolint', [join(root, 'Dockerfile')]);
    expect(result.stdout + result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('is caught by hadolint when it breaks a rule (an unpinned base image)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dockerfile-'));
    const broken = readFileSync(join(root, 'Dockerfile'), 'utf8').replace(
      /^ARG NODE_IMAGE=.*$/m,
      'ARG NODE_IMAGE=node',
    );
    writeFileSync(join(dir, 'Dockerfile'), `${broken}\nFROM debian\nRUN cd /tmp && apt-get install curl\n`);
    const result = await runTool('hadolint', [join(dir, 'Dockerfile')]);
    expect(result.code).not.toBe(0);
    expect(result.stdout).toMatch(/DL3006|DL3003|DL3008/);
  });

  it('runs the Node the project runs on, as a non-root user, with a health check and one entry for every role', () => {
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
    const wanted = readFileSync(join(root, 'scripts/env.sh'), 'utf8').match(/^NODE_VERSION_WANTED="([^"]+)"/m)?.[1];
    expect(dockerfile).toMatch(new RegExp(`^ARG NODE_IMAGE=node:${wanted?.replaceAll('.', '\\.')}-`, 'm'));
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^USER 10001:10001$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*CMD \["node", "bin\/replay.js", "healthcheck"\]$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "bin\/replay.js"\]$/m);
  });
});

describe('YAML files', () => {
  it('pass yamllint (strict) with the project settings', async () => {
    const result = await runTool('yamllint', ['-s', '-f', 'parsable', '-c', join(root, '.yamllint.yml'), '.'], {
      cwd: root,
    });
    expect(result.stdout).toBe('');
    expect(result.code).toBe(0);
  });
});

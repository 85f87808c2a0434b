import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commands } from '../../../src/cli/commands.ts';

// `replay --help` and `replay <command> --help` come from the command catalogue alone, and a command loads only its
// own modules: these run the real CLI as child processes, with test/unit/cli/record-modules.ts recording every
// module they resolve and every shared library they map.

const recorder = join(import.meta.dirname, 'record-modules.ts');

/** Packages no help output needs, the heavy ones first: chDB alone maps some 500 MB of native code. */
const heavyPackages = [
  'chdb',
  '@chdb',
  '@clickhouse/client',
  '@electric-sql/pglite',
  '@aws-sdk',
  'playwright-core',
  'pg',
];

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Every module URL the process resolved. */
  readonly modules: readonly string[];
  /** Every file the process had mapped when it exited (undefined without /proc). */
  readonly mapped: readonly string[] | undefined;
}

let dir: string;
let runs = 0;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'replay-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `node --import record-modules.ts <args>` in the project root (`bin/replay.js ...` or `--input-type` code). */
async function node(args: readonly string[]): Promise<Run> {
  const file = join(dir, `modules-${++runs}.json`);
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    execFile(
      process.execPath,
      ['--import', recorder, ...args],
      { cwd: join(import.meta.dirname, '../../..'), env: { ...process.env, RECORD_MODULES_FILE: file } },
      (error, stdout, stderr) => done({ code: error ? Number(error.code) : 0, stdout, stderr }),
    );
  });
  const recorded = JSON.parse(await readFile(file, 'utf8')) as { modules: string[]; mapped?: string[] };
  return { code, stdout, stderr, modules: recorded.modules, mapped: recorded.mapped };
}

const replay = (...args: string[]) => node(['bin/replay.js', ...args]);

/** Command modules (src/cli/*-command.ts) and heavy packages the run loaded. */
function loaded(run: Run) {
  return {
    commandModules: run.modules
      .filter((url) => /\/src\/cli\/[^/]+-command\.ts$/.test(url))
      .map((url) => url.split('/').pop()),
    heavy: heavyPackages.filter((name) => run.modules.some((url) => url.includes(`/node_modules/${name}/`))),
    chdbMapped: (run.mapped ?? []).filter((path) => /chdb/i.test(path)),
  };
}

/** Sanity check of the recorder: without it seeing the CLI's own modules, "nothing heavy loaded" would prove nothing. */
function expectRecorded(run: Run) {
  expect(run.modules.some((url) => url.endsWith('/src/cli/main.ts'))).toBe(true);
  expect(run.modules.some((url) => url.endsWith('/src/cli/commands.ts'))).toBe(true);
  if (process.platform === 'linux') expect(run.mapped?.length).toBeGreaterThan(0);
}

describe('replay CLI loads only the command it runs', () => {
  it('`replay --help` lists every command with its summary and loads no command module', async () => {
    const run = await replay('--help');
    expect(run.code).toBe(0);
    // One line per command, in catalogue order: two spaces, the name, padding, the summary.
    const listed = run.stdout
      .split('\n')
      .filter((line) => /^ {2}\S/.test(line))
      .map((line) => {
        const [, name, summary] = /^ {2}(\S+) +(.*)$/.exec(line) ?? [];
        return { name, summary };
      });
    expect(listed).toEqual(commands.map(({ name, summary }) => ({ name, summary })));
    expectRecorded(run);
    expect(loaded(run)).toEqual({ commandModules: [], heavy: [], chdbMapped: [] });
  });

  it("every `replay <command> --help` prints that command's usage and loads no command module", async () => {
    const results = await Promise.all(commands.map((command) => replay(command.name, '--help')));
    for (const [i, run] of results.entries()) {
      const command = commands[i]!;
      expect({ command: command.name, code: run.code, stdout: run.stdout }).toEqual({
        command: command.name,
        code: 0,
        stdout: `${command.usage}\n`,
      });
      expect(run.stdout.startsWith(`replay ${command.name}`)).toBe(true);
      expectRecorded(run);
      expect(loaded(run)).toEqual({ commandModules: [], heavy: [], chdbMapped: [] });
    }
  });

  it('an unknown command exits 2 with the help on stderr', async () => {
    const [run, help] = await Promise.all([replay('no-such-command'), replay('--help')]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(`error: unknown command "no-such-command"\n\n${help.stdout}`);
    expect(loaded(run)).toEqual({ commandModules: [], heavy: [], chdbMapped: [] });
  });

  it('running a command loads its module, and `replay errors` loads nothing heavy', async () => {
    const run = await replay('errors');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toBeTypeOf('object');
    expectRecorded(run);
    expect(loaded(run)).toEqual({ commandModules: ['config-command.ts'], heavy: [], chdbMapped: [] });
  });

  it('loading `capture` loads neither chDB, the ClickHouse client, the AWS SDK nor playwright-core', async () => {
    const code = `const { commands } = await import('./src/cli/commands.ts');
      const { run } = await commands.find((c) => c.name === 'capture').load();
      if (typeof run !== 'function') process.exit(3);`;
    const run = await node(['--input-type=module', '-e', code]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const { commandModules, heavy, chdbMapped } = loaded(run);
    expect(commandModules).toEqual(['capture-command.ts']);
    // The capture module opens DATABASE_URL through src/postgres/database.ts, which imports both pg and PGlite.
    expect(heavy.filter((name) => name !== '@electric-sql/pglite' && name !== 'pg')).toEqual([]);
    expect(chdbMapped).toEqual([]);
  });
});

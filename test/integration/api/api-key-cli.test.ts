import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiKeyStore } from '../../../src/api/api-keys.ts';
import { openPostgres, type SqlDatabase } from '../../../src/postgres/database.ts';
import { migratePostgres } from '../../../src/postgres/migrations.ts';
import { type Team, TeamStore } from '../../../src/teams/team-store.ts';
import { createTestTeam } from '../../support/teams.ts';

const stack = inject('stack');

/** `replay api-key ...` as a user runs it; its exit code, stdout and stderr. */
async function cli(...args: string[]) {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['bin/replay.js', 'api-key', ...args], {
      env: { ...process.env, DATABASE_URL: stack.postgres!.url, LOG_LEVEL: 'warn' },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('replay api-key (real Postgres)', () => {
  let db: SqlDatabase;
  let team: Team;

  beforeAll(async () => {
    db = await openPostgres({ kind: 'postgres', url: stack.postgres!.url });
    await migratePostgres(db);
    team = await createTestTeam(new TeamStore(db), { name: 'cli' });
  });
  afterAll(async () => {
    await db?.close();
  });

  it('creates a key shown once and stored hashed, lists it, and revokes it', async () => {
    const created = await cli('create', '--team', String(team.id), '--label', 'ops laptop');
    expect(created.code).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^rpk_[A-Za-z0-9_-]{43}$/);
    const keys = new ApiKeyStore(db);
    const info = await keys.authenticate(key);
    expect(info).toMatchObject({ label: 'ops laptop', teamIds: [team.id] });
    const stored = await db.query<{ prefix: string; secret_sha256: Buffer }>(
      'SELECT prefix, secret_sha256 FROM personal_api_keys WHERE id = $1',
      [info!.id],
    );
    expect(key.startsWith(stored[0]!.prefix)).toBe(true);
    expect(JSON.stringify(stored)).not.toContain(key.slice(10));

    const listed = await cli('list');
    const line = listed.stdout.split('\n').find((l) => l.startsWith(`${info!.id}\t`));
    expect(line).toContain(`teams ${team.id}`);
    expect(line).toContain('active');
    expect(line).not.toContain(key);

    expect((await cli('revoke', String(info!.id))).code).toBe(0);
    expect(await keys.authenticate(key)).toBeUndefined();
    const again = await cli('revoke', String(info!.id));
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('[not_found]');
  });

  it('refuses a key for no team or for a team that does not exist', async () => {
    const none = await cli('create');
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('[config_invalid]');
    const unknown = await cli('create', '--team', '999999999');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no team 999999999');
    expect((await cli('frobnicate')).code).toBe(2);
  });
});

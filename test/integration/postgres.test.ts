import { describe, expect, inject, it } from 'vitest';
import { openPostgres, type PostgresTarget } from '../../src/postgres/database.ts';

const server = inject('stack').postgres!;

const targets: [string, PostgresTarget][] = [
  ['PostgreSQL server', { kind: 'postgres', url: server.url }],
  ['PGlite', { kind: 'pglite', dataDir: 'memory://' }],
];

describe.each(targets)('Postgres access on %s', (_name, target) => {
  it('runs DDL, parameterised writes and reads, and enforces constraints', async () => {
    const db = await openPostgres(target);
    try {
      await db.exec(`
        DROP TABLE IF EXISTS smoke_teams;
        CREATE TABLE smoke_teams (id bigserial PRIMARY KEY, api_token text NOT NULL UNIQUE, name text NOT NULL);`);
      await db.query('INSERT INTO smoke_teams (api_token, name) VALUES ($1, $2), ($3, $4)', [
        'phc_a',
        'Team A',
        'phc_b',
        "Team 'B'",
      ]);
      const rows = await db.query<{ name: string }>('SELECT name FROM smoke_teams WHERE api_token = $1', ['phc_b']);
      expect(rows).toEqual([{ name: "Team 'B'" }]);
      await expect(db.query("INSERT INTO smoke_teams (api_token, name) VALUES ('phc_a', 'dup')")).rejects.toThrow(
        /unique/i,
      );
      const [version] = await db.query<{ server_version: string }>('SHOW server_version');
      process.stderr.write(`[stack] versions exercised: PostgreSQL ${version!.server_version} (${db.kind})\n`);
    } finally {
      await db.close();
    }
  });
});

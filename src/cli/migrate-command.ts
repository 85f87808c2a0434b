import { migratePostgres } from '../postgres/migrations.ts';
import type { Command } from './command.ts';
import { openDatabase } from './runtime.ts';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'Apply pending schema migrations (Postgres), idempotently and safely from several processes at once.',
  usage: `replay migrate

Applies schema/postgres/*.sql files not yet recorded in schema_migrations, in order, to DATABASE_URL.
Running it again, or from two processes at once, is safe: the second waits for the first and finds nothing to do.`,
  async run(_args, { config, log, stdout }) {
    const db = await openDatabase(config);
    try {
      const applied = await migratePostgres(db);
      stdout(applied.length === 0 ? 'postgres: up to date\n' : `postgres: applied ${applied.join(', ')}\n`);
      log.debug('migrations done', { applied: applied.length });
    } finally {
      await db.close();
    }
    return 0;
  },
};

import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ReplayError } from '../errors/index.ts';
import { migratePostgres } from '../postgres/migrations.ts';
import { type RetentionClass, retentionClasses } from '../recordings/message-codec.ts';
import { TeamStore } from '../teams/team-store.ts';
import type { Command } from './command.ts';
import { teamUsage as usage } from './commands.ts';
import { openDatabase } from './runtime.ts';

export const teamCommand: Command = {
  async run(args, { config, stdout }) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: { name: { type: 'string' }, retention: { type: 'string', default: '30d' } },
    });
    const [action] = positionals;
    if (action !== 'create' && action !== 'list') {
      process.stderr.write(`${usage}\n`);
      return 2;
    }
    const db = await openDatabase(config);
    try {
      await migratePostgres(db);
      const teams = new TeamStore(db);
      if (action === 'list') {
        for (const team of await teams.list()) {
          stdout(`${team.id}\t${team.apiToken}\t${team.retention}\t${team.name}\n`);
        }
        return 0;
      }
      const name = values.name?.trim();
      if (!name) throw new ReplayError('config_invalid', 'team create needs --name <text>');
      if (!retentionClasses.includes(values.retention as RetentionClass)) {
        throw new ReplayError('config_invalid', `--retention must be one of ${retentionClasses.join(', ')}`);
      }
      const team = await teams.create({
        name,
        apiToken: `phc_${randomBytes(24).toString('base64url')}`,
        sessionRecordingEnabled: true,
        retention: values.retention as RetentionClass,
        consoleLogCaptureEnabled: true,
      });
      stdout(`${team.id}\t${team.apiToken}\n`);
      process.stderr.write(`created team ${team.id} (${team.name}); its project token is printed above\n`);
      return 0;
    } finally {
      await db.close();
    }
  },
};

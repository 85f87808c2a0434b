import { parseArgs } from 'node:util';
import { type ApiKeyScope, ApiKeyStore, apiKeyScopes } from '../api/api-keys.ts';
import { ReplayError } from '../errors/index.ts';
import { migratePostgres } from '../postgres/migrations.ts';
import { TeamStore } from '../teams/team-store.ts';
import type { Command } from './command.ts';
import { apiKeyUsage as usage } from './commands.ts';
import { openDatabase } from './runtime.ts';

export const apiKeyCommand: Command = {
  async run(args, { config, stdout }) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        team: { type: 'string', multiple: true },
        label: { type: 'string' },
        scope: { type: 'string', multiple: true },
      },
    });
    const [action, target] = positionals;
    const db = await openDatabase(config);
    try {
      await migratePostgres(db);
      const keys = new ApiKeyStore(db);
      if (action === 'create') {
        const teamIds = (values.team ?? []).map(Number);
        if (teamIds.length === 0 || teamIds.some((id) => !Number.isSafeInteger(id) || id <= 0)) {
          throw new ReplayError('config_invalid', 'api-key create needs at least one --team <id>');
        }
        const known = await new TeamStore(db).byIds(teamIds);
        const unknown = teamIds.filter((id) => !known.some((team) => team.id === id));
        if (unknown.length > 0) throw new ReplayError('config_invalid', `no team ${unknown.join(', ')}`);
        const scopes = (values.scope ?? []) as ApiKeyScope[];
        const unknownScope = scopes.find((scope) => !apiKeyScopes.includes(scope));
        if (unknownScope) {
          throw new ReplayError('config_invalid', `--scope ${unknownScope}: one of ${apiKeyScopes.join(', ')}`);
        }
        const { key, info } = await keys.create(values.label ?? 'api key', teamIds, scopes);
        stdout(`${key}\n`);
        process.stderr.write(
          `created key ${info.id} (${info.prefix}...) for teams ${info.teamIds.join(', ')}, scopes ${info.scopes.join(', ')}\n`,
        );
        return 0;
      }
      if (action === 'list') {
        for (const key of await keys.list()) {
          const status = key.revokedAt ? `revoked ${key.revokedAt.toISOString()}` : 'active';
          const used = key.lastUsedAt ? key.lastUsedAt.toISOString() : 'never';
          stdout(
            `${key.id}\t${key.prefix}...\tteams ${key.teamIds.join(',')}\tscopes ${key.scopes.join(',')}\t${status}\tlast used ${used}\t${key.label}\n`,
          );
        }
        return 0;
      }
      if (action === 'revoke' && target !== undefined && /^\d+$/.test(target)) {
        if (!(await keys.revoke(Number(target)))) {
          throw new ReplayError('not_found', `no active key ${target}`);
        }
        stdout(`revoked key ${target}\n`);
        return 0;
      }
      process.stderr.write(`${usage}\n`);
      return 2;
    } finally {
      await db.close();
    }
  },
};

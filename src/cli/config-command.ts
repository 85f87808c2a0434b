import { type Config, configReferenceMarkdown } from '../config/index.ts';
import { type SettingSpec, settings } from '../config/settings.ts';
import { errorCatalogue, errorReferenceMarkdown } from '../errors/index.ts';
import type { Command } from './command.ts';

export const errorsCommand: Command = {
  async run(args, { stdout }) {
    stdout(args.includes('--markdown') ? errorReferenceMarkdown() : `${JSON.stringify(errorCatalogue, null, 2)}\n`);
    return 0;
  },
};

/**
 * The configuration as `replay config` prints it: every setting that holds a secret (marked with `redact` in the
 * settings table: S3_SECRET_ACCESS_KEY, the passwords inside DATABASE_URL and CLICKHOUSE_URL) redacted.
 */
export function redactedConfig(config: Config): Record<string, unknown> {
  const table = settings as Record<string, SettingSpec<unknown>>;
  return Object.fromEntries(
    Object.entries(config).map(([key, value]) => {
      const redact = table[key]?.redact;
      return [key, redact ? redact(value) : value];
    }),
  );
}

export const configCommand: Command = {
  async run(args, { config, stdout }) {
    stdout(
      args.includes('--markdown') ? configReferenceMarkdown() : `${JSON.stringify(redactedConfig(config), null, 2)}\n`,
    );
    return 0;
  },
};

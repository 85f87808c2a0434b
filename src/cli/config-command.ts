import { configReferenceMarkdown } from '../config/index.ts';
import type { Command } from './command.ts';

export const configCommand: Command = {
  name: 'config',
  summary: 'Print the effective configuration, or the reference table with --markdown.',
  usage: `replay config [--markdown]

Prints every setting with its effective value (from the environment or its default) as JSON.
  --markdown   print the configuration reference (docs/configuration.md) instead`,
  async run(args, { config, stdout }) {
    stdout(args.includes('--markdown') ? configReferenceMarkdown() : `${JSON.stringify(config, null, 2)}\n`);
    return 0;
  },
};

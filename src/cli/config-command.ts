import { configReferenceMarkdown } from '../config/index.ts';
import { errorCatalogue, errorReferenceMarkdown } from '../errors/index.ts';
import type { Command } from './command.ts';

export const errorsCommand: Command = {
  name: 'errors',
  summary: 'Print the error-code catalogue (--markdown for the docs table, JSON otherwise).',
  usage: `replay errors [--markdown]

Lists every stable error code with its HTTP status, type, retriable flag and meaning.`,
  async run(args, { stdout }) {
    stdout(args.includes('--markdown') ? errorReferenceMarkdown() : `${JSON.stringify(errorCatalogue, null, 2)}\n`);
    return 0;
  },
};

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

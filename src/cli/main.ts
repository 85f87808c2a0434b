import { loadConfig } from '../config/index.ts';
import { isReplayError } from '../errors/index.ts';
import { createLogger } from '../logging/logger.ts';
import { commands } from './commands.ts';

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    'usage: replay <command> [options]',
    '',
    'Session-replay ingestion pipeline. Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    "Run `replay <command> --help` for a command's options. Settings come from environment variables:",
    'see docs/configuration.md or `replay config --markdown`.',
    '',
  ].join('\n');
}

/** Runs one CLI invocation and returns its exit code. Known errors print one line, never a stack trace. */
export async function main(argv: readonly string[]): Promise<number> {
  const stdout = (text: string) => process.stdout.write(text);
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    stdout(help());
    return name === undefined ? 2 : 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`error: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  if (args.includes('--help') || args.includes('-h')) {
    stdout(`${command.usage}\n`);
    return 0;
  }
  const shutdown = new AbortController();
  const onSignal = () => shutdown.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const config = loadConfig();
    const log = createLogger(config.logLevel, command.name);
    const loaded = await command.load();
    return await loaded.run(args, { config, log, signal: shutdown.signal, stdout });
  } catch (error) {
    if (isReplayError(error)) {
      process.stderr.write(`error [${error.code}]: ${error.message}\n`);
      return 1;
    }
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

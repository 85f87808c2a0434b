import type { Config } from '../config/index.ts';
import type { Logger } from '../logging/logger.ts';

export interface CommandContext {
  readonly config: Config;
  readonly log: Logger;
  /** Aborted on SIGINT/SIGTERM: long-running commands shut down cleanly when it fires. */
  readonly signal: AbortSignal;
  readonly stdout: (text: string) => void;
}

/** What a command does: exported by its module (src/cli/<name>-command.ts), which is loaded only to run it. */
export interface Command {
  run(args: readonly string[], context: CommandContext): Promise<number>;
}

/**
 * A command as the CLI lists it (src/cli/commands.ts): its help text, and how to load its module. Listing commands
 * or printing a command's usage loads none of their modules.
 */
export interface CommandEntry {
  readonly name: string;
  /** One line, shown by `replay --help`. */
  readonly summary: string;
  /** Shown by `replay <name> --help`. */
  readonly usage: string;
  /** Imports the command's module (and so everything it needs); only `main` calls it, to run the command. */
  load(): Promise<Command>;
}

import type { Config } from '../config/index.ts';
import type { Logger } from '../logging/logger.ts';

export interface CommandContext {
  readonly config: Config;
  readonly log: Logger;
  /** Aborted on SIGINT/SIGTERM: long-running commands shut down cleanly when it fires. */
  readonly signal: AbortSignal;
  readonly stdout: (text: string) => void;
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  /** Shown by `replay <name> --help`. */
  readonly usage: string;
  run(args: readonly string[], context: CommandContext): Promise<number>;
}

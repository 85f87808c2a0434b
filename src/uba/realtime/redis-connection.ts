import { createClient, ErrorReply } from 'redis';
import { withTimeout } from '../../consumer/backoff.ts';
import { ReplayError } from '../../errors/index.ts';
import type { Logger } from '../../logging/logger.ts';

export interface RedisConnectionOptions {
  /** `redis://[user:password@]host:port[/db]` (or `rediss://`). */
  readonly url: string;
  /** Longest a connection (TCP plus handshake) may take. */
  readonly connectTimeoutMs: number;
  /** Longest one command may take, from the call to its reply. */
  readonly commandTimeoutMs: number;
  readonly log: Logger;
}

type Client = ReturnType<typeof createClient>;

/** Redis replies that say "not now" (loading its data, a script running too long, out of memory, a replica, ...). */
const TRANSIENT_REPLIES = ['LOADING', 'BUSY', 'OOM', 'READONLY', 'MASTERDOWN', 'TRYAGAIN', 'CLUSTERDOWN', 'MISCONF'];
/** Replies that say this process is configured wrong for this Redis. */
const CONFIGURATION_REPLIES = ['NOAUTH', 'WRONGPASS', 'NOPERM'];

/**
 * A Redis failure as a catalogue error (DESIGN §3.5.1): unreachable, timing out, refusing with LOADING/BUSY/OOM... is
 * `redis_unavailable` (transient); refused credentials are `config_invalid` (fatal: the process exits); any other
 * error reply (a bug in a script) is `internal_error` (transient, logged).
 */
export function classifyRedisError(error: unknown): ReplayError {
  if (error instanceof ReplayError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof ErrorReply) {
    const prefix = message.split(' ', 1)[0]!;
    if (TRANSIENT_REPLIES.includes(prefix)) {
      return new ReplayError('redis_unavailable', `Redis refused for now: ${message}`, { cause: error });
    }
    if (CONFIGURATION_REPLIES.includes(prefix)) {
      return new ReplayError('config_invalid', `Redis refused the credentials of REDIS_URL: ${message}`, {
        cause: error,
      });
    }
    return new ReplayError('internal_error', `Redis error reply: ${message}`, { cause: error });
  }
  return new ReplayError('redis_unavailable', `Redis did not answer: ${message}`, { cause: error });
}

/**
 * One Redis connection (node-redis) with a bound on every call. node-redis's own command timeout stops applying
 * once a command is written, so every call here is raced against `commandTimeoutMs`; a call that times out or a
 * connection that fails is dropped whole (its pending commands fail), and the next call connects afresh. node-redis
 * never reconnects or queues on its own here (`reconnectStrategy: false`, no offline queue): the caller's backoff
 * decides when to try again. A command that timed out may still run on the server later: the realtime script is
 * idempotent (it skips applied offsets), so that is harmless.
 */
export class RedisConnection {
  private readonly options: RedisConnectionOptions;
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private closed = false;

  constructor(options: RedisConnectionOptions) {
    this.options = options;
  }

  /** Runs `command` on a connected client, bounded; failures come back classified (`classifyRedisError`). */
  async run<T>(what: string, command: (client: Client) => Promise<T>): Promise<T> {
    let client: Client | undefined;
    try {
      client = await this.connected();
      return await withTimeout(command(client), this.options.commandTimeoutMs, `Redis ${what}`);
    } catch (error) {
      // Anything but an error reply may have left the connection in an unknown state (a reply still on its way).
      if (client && !(error instanceof ErrorReply)) this.drop(client);
      throw classifyRedisError(error);
    }
  }

  /** EVALSHA of a script (loaded once by EVAL when Redis answers NOSCRIPT: after a restart, or the first time). */
  async evalScript(
    script: string,
    sha: string,
    args: { readonly keys: string[]; readonly arguments: string[] },
    onLoad?: () => void,
  ): Promise<unknown> {
    try {
      return await this.run('EVALSHA', (client) => client.evalSha(sha, args));
    } catch (error) {
      const cause = (error as ReplayError).cause;
      if (!(cause instanceof ErrorReply) || !cause.message.startsWith('NOSCRIPT')) throw error;
    }
    onLoad?.();
    return await this.run('EVAL', (client) => client.eval(script, args));
  }

  async ping(): Promise<void> {
    await this.run('PING', (client) => client.ping());
  }

  async close(): Promise<void> {
    this.closed = true;
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    if (!client) return;
    // close() throws at once (ClientClosedError) when the socket is already gone, e.g. after Redis exited first on a
    // Ctrl-C to the whole process group: closing what is closed is not an error.
    const closing = Promise.resolve().then(() => client.close());
    await withTimeout(closing, this.options.commandTimeoutMs, 'closing the Redis connection').catch(() => {
      try {
        client.destroy();
      } catch {
        // already destroyed
      }
    });
  }

  private connected(): Promise<Client> {
    if (this.closed) return Promise.reject(new Error('the Redis connection is closed'));
    if (this.client?.isReady) return Promise.resolve(this.client);
    if (this.client) this.drop(this.client);
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connect(): Promise<Client> {
    const client = createClient({
      url: this.options.url,
      socket: { connectTimeout: this.options.connectTimeoutMs, reconnectStrategy: false },
      disableOfflineQueue: true,
      disableClientInfo: true,
    });
    let reported = false;
    client.on('error', (error: Error) => {
      // node-redis also rejects the command concerned; this only keeps the event from being unhandled.
      if (!reported) this.options.log.debug('Redis connection error', { error: error.message });
      reported = true;
    });
    try {
      // The handshake (AUTH, SELECT) could hang on a stuck server even after the TCP connect: bound it too.
      await withTimeout(client.connect(), this.options.connectTimeoutMs + 1000, 'connecting to Redis');
    } catch (error) {
      this.drop(client);
      throw error;
    }
    if (this.closed) {
      this.drop(client);
      throw new Error('the Redis connection is closed');
    }
    this.client = client;
    return client;
  }

  private drop(client: Client): void {
    if (this.client === client) this.client = undefined;
    try {
      client.destroy();
    } catch {
      // already closed
    }
  }
}

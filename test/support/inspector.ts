/**
 * A minimal Chrome DevTools Protocol client for a child Node process started with `--inspect=127.0.0.1:0`. Crash
 * tests use it to stop a real process at an exact source line (a breakpoint) and then kill it there: the kill lands
 * between two statements deterministically, with no fault hook in the production code.
 */
export class InspectorSession {
  private readonly socket: WebSocket;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private readonly listeners = new Set<(method: string, params: Record<string, unknown>) => void>();
  private closedError: Error | undefined;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as {
        id?: number;
        result?: unknown;
        error?: { message: string };
        method?: string;
        params?: Record<string, unknown>;
      };
      if (message.id !== undefined) {
        const waiter = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (message.error) waiter?.reject(new Error(`inspector: ${message.error.message}`));
        else waiter?.resolve(message.result);
      } else if (message.method) {
        for (const listener of this.listeners) listener(message.method, message.params ?? {});
      }
    });
    socket.addEventListener('close', () => {
      this.closedError = new Error('inspector connection closed');
      for (const waiter of this.pending.values()) waiter.reject(this.closedError);
      this.pending.clear();
    });
  }

  /** Connects to the `ws://...` address a child prints as "Debugger listening on ws://...". */
  static async connect(url: string, timeoutMs = 10_000): Promise<InspectorSession> {
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`inspector: no connection to ${url} in ${timeoutMs} ms`)),
        timeoutMs,
      );
      socket.addEventListener('open', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.addEventListener('error', () => {
        clearTimeout(timer);
        reject(new Error(`inspector: cannot connect to ${url}`));
      });
    });
    return new InspectorSession(socket);
  }

  send<T = Record<string, unknown>>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Resolves with the params of the first `method` event that satisfies `match`; rejects after `timeoutMs`. */
  waitForEvent(
    method: string,
    match: (params: Record<string, unknown>) => boolean,
    timeoutMs: number,
  ): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const listener = (got: string, params: Record<string, unknown>) => {
        if (got !== method || !match(params)) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(params);
      };
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`inspector: no ${method} event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.listeners.add(listener);
    });
  }

  /**
   * Sets a breakpoint on the first line of `file` (a path suffix such as `src/x/y.ts`) whose text contains `needle`,
   * and returns its id. Node strips TypeScript types without moving code, so source lines are the script's lines.
   */
  async breakAt(file: string, source: string, needle: string): Promise<string> {
    const lineNumber = source.split('\n').findIndex((line) => line.includes(needle));
    if (lineNumber < 0) throw new Error(`inspector: no line of ${file} contains ${JSON.stringify(needle)}`);
    const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const result = await this.send<{ breakpointId: string; locations: unknown[] }>('Debugger.setBreakpointByUrl', {
      urlRegex: `${escaped}$`,
      lineNumber,
    });
    if (result.locations.length === 0)
      throw new Error(`inspector: breakpoint at ${file}:${lineNumber + 1} not resolved`);
    return result.breakpointId;
  }

  close(): void {
    this.socket.close();
  }
}

/** Log lines to stderr: `time level [component] message key=value...`, filtered by LOG_LEVEL. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

export function createLogger(
  level: LogLevel,
  component = 'replay',
  write = (line: string) => process.stderr.write(line),
): Logger {
  const emit = (at: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (rank[at] < rank[level]) return;
    const extra = fields
      ? Object.entries(fields)
          .map(([key, value]) => ` ${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
          .join('')
      : '';
    write(`${new Date().toISOString()} ${at.padEnd(5)} [${component}] ${message}${extra}\n`);
  };
  return {
    debug: (message, fields) => emit('debug', message, fields),
    info: (message, fields) => emit('info', message, fields),
    warn: (message, fields) => emit('warn', message, fields),
    error: (message, fields) => emit('error', message, fields),
    child: (name) => createLogger(level, `${component}.${name}`, write),
  };
}

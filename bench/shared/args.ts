import { parseArgs } from 'node:util';

type OptionSpec =
  | { readonly type: 'string'; readonly default: string }
  | { readonly type: 'boolean'; readonly default: boolean };

/**
 * A bench's command line: its options plus `--help` (prints `usage`, exits 0). An unknown or malformed option prints
 * the error and the usage, and exits 2, instead of a stack trace.
 */
export function benchArgs<const T extends Record<string, OptionSpec>>(
  usage: string,
  options: T,
): { -readonly [K in keyof T]: T[K]['type'] extends 'string' ? string : boolean } & {
  readonly number: (name: keyof T, min?: number) => number;
} {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ options: { ...options, help: { type: 'boolean', default: false } } }).values;
  } catch (error) {
    process.stderr.write(`error: ${(error as Error).message}\n\n${usage.trimEnd()}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`${usage.trimEnd()}\n`);
    process.exit(0);
  }
  /** A numeric option, at least `min` (default 1); anything else exits 2 with the usage. */
  const number = (name: keyof T, min = 1) => {
    const value = Number(values[name as string]);
    if (!Number.isFinite(value) || value < min) {
      process.stderr.write(`error: --${String(name)} must be a number ≥ ${min}, got "${values[name as string]}"\n`);
      process.exit(2);
    }
    return value;
  };
  return Object.assign(values, { number }) as never;
}

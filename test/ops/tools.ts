import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadConfig } from '../../src/config/index.ts';

/** The validators `scripts/setup` installs (REPLAY_OPS_BIN), one absolute path each. */
export type OpsToolName = 'helm' | 'kubeconform' | 'compose-check' | 'promtool' | 'hadolint' | 'yamllint';

export const opsToolsDir = loadConfig().opsToolsDir;

/** Kubernetes JSON schemas (core and the CRDs the chart uses), prepared by `scripts/setup` for kubeconform. */
export const kubernetesSchemasDir = join(dirname(opsToolsDir), 'kubernetes-schemas');

export function opsTool(name: OpsToolName): string {
  const path = join(opsToolsDir, name);
  if (!existsSync(path)) throw new Error(`${name} is not at ${path}: run scripts/setup (it installs the validators).`);
  return path;
}

export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a validator to completion (bounded: 2 minutes), never throwing on a non-zero exit: tests assert the code. */
export function runTool(
  name: OpsToolName,
  args: readonly string[],
  options: { readonly cwd?: string; readonly input?: string } = {},
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      opsTool(name),
      args,
      { cwd: options.cwd, timeout: 120_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') reject(error);
        else resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

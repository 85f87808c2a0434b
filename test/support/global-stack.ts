import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { loadConfig } from '../../src/config/index.ts';
import { isReplayError } from '../../src/errors/index.ts';
import { type StackInfo, startLocalStack } from '../../src/harness/stack.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    stack: StackInfo;
  }
}

/** Starts the real services once for the integration project and stops them when it ends. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), 'replay-test-'));
  const log = (message: string) => process.stderr.write(`[stack] ${message}\n`);
  let stack: Awaited<ReturnType<typeof startLocalStack>>;
  try {
    stack = await startLocalStack(loadConfig(), { dir, onProgress: log });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    if (isReplayError(error, 'prerequisite_missing') || isReplayError(error, 'config_invalid')) {
      // One sentence, no stack trace: the reader is setting up a machine.
      process.stderr.write(`error: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const { kafka, minio, postgres, redis } = stack.info;
  log(
    `versions exercised: Apache Kafka ${kafka?.version}, MinIO ${minio?.version}, PostgreSQL ${postgres?.version}, Redis ${redis?.version}`,
  );
  project.provide('stack', stack.info);
  return async () => {
    await stack.stop();
    await rm(dir, { recursive: true, force: true });
  };
}

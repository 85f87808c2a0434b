import { isReplayError, ReplayError } from '../errors/index.ts';
import {
  chromiumPrerequisites,
  kafkaPrerequisites,
  minioPrerequisites,
  postgresPrerequisites,
  prometheusPrerequisites,
  redisPrerequisites,
} from '../harness/prerequisites.ts';
import { nativeAddons } from '../native/index.ts';
import type { Command } from './command.ts';

/** Capture's addons (build/native/): without them it runs, slower. */
function nativeAddonsBuilt(): string {
  const missing = Object.entries(nativeAddons())
    .filter(([, built]) => !built)
    .map(([name]) => name);
  if (missing.length > 0) {
    throw new ReplayError('prerequisite_missing', `${missing.join(', ')} not built in build/native: run scripts/setup`);
  }
  return 'json-skip, gzip-inflate (build/native)';
}

export const doctorCommand: Command = {
  async run(_args, { config, stdout }) {
    const checks: [string, () => string][] = [
      ['node', () => process.version],
      ['kafka', () => `Apache Kafka ${kafkaPrerequisites(config).version}`],
      ['minio', () => `MinIO ${minioPrerequisites(config).version}`],
      ['postgres', () => postgresPrerequisites(config).binDir],
      ['redis', () => `Redis ${redisPrerequisites(config).version}`],
      ['prometheus', () => `Prometheus ${prometheusPrerequisites(config).version}`],
      ['chromium', () => chromiumPrerequisites(config).binary],
      ['native', nativeAddonsBuilt],
    ];
    let failures = 0;
    for (const [name, check] of checks) {
      try {
        stdout(`ok       ${name.padEnd(9)} ${check()}\n`);
      } catch (error) {
        if (!isReplayError(error, 'prerequisite_missing')) throw error;
        failures++;
        stdout(`missing  ${name.padEnd(9)} ${error.message}\n`);
      }
    }
    return failures === 0 ? 0 : 1;
  },
};

import { isReplayError } from '../errors/index.ts';
import {
  chromiumPrerequisites,
  kafkaPrerequisites,
  minioPrerequisites,
  postgresPrerequisites,
  prometheusPrerequisites,
  redisPrerequisites,
} from '../harness/prerequisites.ts';
import type { Command } from './command.ts';

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

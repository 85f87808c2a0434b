import { isReplayError } from '../errors/index.ts';
import {
  chromiumPrerequisites,
  kafkaPrerequisites,
  minioPrerequisites,
  postgresPrerequisites,
} from '../harness/prerequisites.ts';
import type { Command } from './command.ts';

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'Check that the programs the local services need are installed.',
  usage: `replay doctor

Checks Node, Java and the Kafka jars, the MinIO binary, PostgreSQL and Chromium. Exit code 1 when one is missing,
with one sentence saying how to get it (usually: run scripts/setup).`,
  async run(_args, { config, stdout }) {
    const checks: [string, () => string][] = [
      ['node', () => process.version],
      ['kafka', () => `Apache Kafka ${kafkaPrerequisites(config).version}`],
      ['minio', () => `MinIO ${minioPrerequisites(config).version}`],
      ['postgres', () => postgresPrerequisites(config).binDir],
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

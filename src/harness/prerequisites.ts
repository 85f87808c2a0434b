import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/index.ts';
import { ReplayError } from '../errors/index.ts';

/**
 * Locates the programs the local services need. Each failure is one sentence that says what is missing and how to
 * get it, because the person reading it is usually setting up a new machine.
 */
function missing(sentence: string): ReplayError {
  return new ReplayError('prerequisite_missing', sentence);
}

/** stdout and stderr of a command (`java -version` prints to stderr), or undefined when it cannot run. */
function commandOutput(command: string, args: string[]): string | undefined {
  const result = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return result.error ? undefined : `${result.stdout}${result.stderr}`;
}

export interface KafkaPrerequisites {
  readonly java: string;
  readonly classpath: string;
  readonly version: string;
}

export function kafkaPrerequisites(config: Config): KafkaPrerequisites {
  const javaVersion = commandOutput(config.javaBinary, ['-version'])?.match(/version "(\d+)/)?.[1];
  if (javaVersion === undefined) {
    throw missing(`Java was not found (${config.javaBinary}): install Java 17 or newer, or run scripts/setup.`);
  }
  if (Number(javaVersion) < 17) {
    throw missing(`Java ${javaVersion} is too old for Kafka 4: install Java 17 or newer.`);
  }
  const libs = join(config.kafkaHome, 'libs');
  const jar = existsSync(libs) ? readdirSync(libs).find((name) => /^kafka_2\.13-[\d.]+\.jar$/.test(name)) : undefined;
  if (jar === undefined) {
    throw missing(`The Kafka broker jars are not in ${libs}: run scripts/setup (it resolves them from Maven Central).`);
  }
  return {
    java: config.javaBinary,
    classpath: join(libs, '*'),
    version: jar.slice('kafka_2.13-'.length, -'.jar'.length),
  };
}

export function minioPrerequisites(config: Config): { readonly binary: string; readonly version: string } {
  if (!existsSync(config.minioBinary)) {
    throw missing(`The MinIO server binary is not at ${config.minioBinary}: run scripts/setup (it builds it with Go).`);
  }
  // The cache directory is named after the Go module version it was built from.
  const version = config.minioBinary.match(/minio-(v[^/]+)\/minio$/)?.[1] ?? 'unknown';
  return { binary: config.minioBinary, version };
}

export function postgresPrerequisites(config: Config): { readonly binDir: string } {
  let binDir = config.postgresBinDir;
  if (binDir === '') {
    const root = '/usr/lib/postgresql';
    const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(a) - Number(b)) : [];
    binDir = versions.length > 0 ? join(root, versions.at(-1)!, 'bin') : '';
  }
  if (binDir === '' || !existsSync(join(binDir, 'initdb'))) {
    throw missing(
      'PostgreSQL server binaries (initdb, postgres) were not found: install the Debian package postgresql.',
    );
  }
  return { binDir };
}

export function chromiumPrerequisites(config: Config): { readonly binary: string } {
  if (!existsSync(config.chromiumBinary)) {
    throw missing(`Chromium was not found at ${config.chromiumBinary}: install the Debian package chromium.`);
  }
  return { binary: config.chromiumBinary };
}

export function prometheusPrerequisites(config: Config): { readonly binary: string; readonly version: string } {
  const version = commandOutput(config.prometheusBinary, ['--version'])?.match(/version (\d[\w.+~-]*)/)?.[1];
  if (version === undefined) {
    throw missing(`prometheus was not found (${config.prometheusBinary}): install the Debian package prometheus.`);
  }
  return { binary: config.prometheusBinary, version };
}

export function redisPrerequisites(config: Config): { readonly binary: string; readonly version: string } {
  const version = commandOutput(config.redisBinary, ['--version'])?.match(/v=(\d[\w.]*)/)?.[1];
  if (version === undefined) {
    throw missing(`redis-server was not found (${config.redisBinary}): install the Debian package redis-server.`);
  }
  return { binary: config.redisBinary, version };
}

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Kafka from 'node-rdkafka';
import type { Config } from '../config/index.ts';
import { ManagedProcess } from './child-process.ts';
import { freePort, LOOPBACK } from './ports.ts';
import { kafkaPrerequisites } from './prerequisites.ts';

export interface LocalKafkaOptions {
  /** Directory for the broker's log segments, metadata and log file. Reusing it keeps data between runs. */
  readonly dir: string;
  readonly startTimeoutMs?: number;
}

export interface LocalKafka {
  readonly brokers: string;
  readonly version: string;
  readonly port: number;
  /**
   * A second listener for fault injection: the broker listens on `upstream` but advertises `brokers`, where nothing
   * listens until a test puts a proxy there (forwarding to `upstream`). Clients bootstrapped through `brokers` then
   * send every request, the transaction coordinator's included, through that proxy.
   */
  readonly proxied: { readonly brokers: string; readonly upstream: string };
  /** The running broker JVM (replaced by `restart`). */
  readonly process: ManagedProcess;
  /** Stops the broker (`kill -9` when `hard`) and starts it again on the same directory and ports. */
  restart(options?: { hard?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

interface KafkaPorts {
  readonly port: number;
  readonly controllerPort: number;
  /** Where the broker listens for proxied clients, and the port it advertises to them (the proxy's). */
  readonly proxiedPort: number;
  readonly proxyPort: number;
}

/**
 * The controller's address is written into the KRaft metadata at format time, so a directory keeps its ports for
 * life: they are chosen once and remembered next to the data.
 */
async function portsFor(dir: string): Promise<KafkaPorts> {
  const file = join(dir, 'ports.json');
  const saved = await readFile(file, 'utf8').then(
    (text) => JSON.parse(text) as Partial<KafkaPorts>,
    () => undefined,
  );
  if (saved?.port && saved.controllerPort && saved.proxiedPort && saved.proxyPort) return saved as KafkaPorts;
  // Broker listeners may change between starts (only the controller's address is fixed at format time).
  const ports = {
    port: saved?.port ?? (await freePort()),
    controllerPort: saved?.controllerPort ?? (await freePort()),
    proxiedPort: await freePort(),
    proxyPort: await freePort(),
  };
  await writeFile(file, JSON.stringify(ports));
  return ports;
}

/** A KRaft cluster id: 16 random bytes, base64url. One that starts with '-' would read as an option: draw again. */
function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (/^[A-Za-z0-9]/.test(id)) return id;
  }
}

function serverProperties(dir: string, ports: KafkaPorts): string {
  const { port, controllerPort, proxiedPort, proxyPort } = ports;
  const props: Record<string, string | number> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.bootstrap.servers': `${LOOPBACK}:${controllerPort}`,
    listeners: `PLAINTEXT://${LOOPBACK}:${port},CONTROLLER://${LOOPBACK}:${controllerPort},PROXIED://${LOOPBACK}:${proxiedPort}`,
    'advertised.listeners': `PLAINTEXT://${LOOPBACK}:${port},PROXIED://${LOOPBACK}:${proxyPort}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,PROXIED:PLAINTEXT',
    'log.dirs': join(dir, 'data'),
    'auto.create.topics.enable': 'false',
    // A single node: internal topics with one replica, or consumer groups and transactions hang.
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 8,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 8,
    'share.coordinator.state.topic.replication.factor': 1,
    'share.coordinator.state.topic.min.isr': 1,
    'group.initial.rebalance.delay.ms': 0,
    'message.max.bytes': 20 * 1024 * 1024 + 1024,
    'num.network.threads': 2,
    'num.io.threads': 4,
  };
  return `${Object.entries(props)
    .map(([key, value]) => `${key}=${value}`)
    .join('\n')}\n`;
}

/** Waits until the broker answers a metadata request. */
async function brokerAnswers(brokers: string): Promise<boolean> {
  const producer = new Kafka.Producer({ 'metadata.broker.list': brokers, 'client.id': 'replay-harness-probe' });
  try {
    await new Promise<void>((resolve, reject) => {
      producer.connect({ timeout: 2000 }, (error) => (error ? reject(error) : resolve()));
    });
    return true;
  } finally {
    if (producer.isConnected()) producer.disconnect();
  }
}

/**
 * Starts a single-node Apache Kafka (KRaft: broker and controller in one JVM) on loopback. Storage is formatted on
 * first use of `dir`; later starts reuse it, so `dev` mode keeps its topics between runs.
 */
export async function startLocalKafka(config: Config, options: LocalKafkaOptions): Promise<LocalKafka> {
  const prereq = kafkaPrerequisites(config);
  const dir = options.dir;
  await mkdir(dir, { recursive: true });
  const ports = await portsFor(dir);
  const { port } = ports;
  const propsFile = join(dir, 'server.properties');
  await writeFile(propsFile, serverProperties(dir, ports));
  const logFile = join(dir, 'kafka.log');
  const jvm = [
    `-Xmx${config.kafkaHeapMb}m`,
    `-Xms${Math.min(256, config.kafkaHeapMb)}m`,
    '-XX:+UseG1GC',
    '-Djava.awt.headless=true',
    '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
    '-cp',
    prereq.classpath,
  ];

  // Format once; later starts on the same directory keep its cluster id and topics.
  if (!existsSync(join(dir, 'data', 'meta.properties'))) {
    await new ManagedProcess({
      name: 'kafka storage format',
      command: prereq.java,
      args: [...jvm, 'kafka.tools.StorageTool', 'format', '--standalone', '-t', clusterId(), '-c', propsFile],
      logFile,
    }).completion();
  }

  const brokers = `${LOOPBACK}:${port}`;
  const startBroker = async (): Promise<ManagedProcess> => {
    const broker = new ManagedProcess({
      name: 'kafka',
      command: prereq.java,
      args: [...jvm, 'kafka.Kafka', propsFile],
      logFile,
    });
    try {
      await broker.waitUntil(() => brokerAnswers(brokers), options.startTimeoutMs ?? 90_000, `answering on ${brokers}`);
    } catch (error) {
      await broker.kill();
      throw error;
    }
    return broker;
  };

  let broker = await startBroker();
  return {
    brokers,
    port,
    proxied: { brokers: `${LOOPBACK}:${ports.proxyPort}`, upstream: `${LOOPBACK}:${ports.proxiedPort}` },
    version: prereq.version,
    get process() {
      return broker;
    },
    async restart(restartOptions) {
      if (restartOptions?.hard) await broker.kill();
      else await broker.stop(20_000);
      broker = await startBroker();
    },
    stop: () => broker.stop(20_000),
  };
}

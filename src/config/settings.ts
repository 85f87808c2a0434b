import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { ReplayError } from '../errors/index.ts';

/**
 * One row per setting: the environment variable, what it means, its default. `docs/configuration.md` is generated
 * from this table (`replay config --markdown`) and a unit test keeps the two in step.
 */
export interface SettingSpec<T> {
  readonly env: string;
  readonly doc: string;
  /** Shown in the reference table; computed defaults (paths under $HOME) are described, not printed. */
  readonly defaultText: string;
  readonly parse: (raw: string | undefined, env: Readonly<Record<string, string | undefined>>) => T;
  /** Set on settings that hold a secret: what `replay config` prints instead of the value. */
  readonly redact?: (value: T) => T;
}

/** A secret (a password, a secret key) as `replay config` prints it: `***`, or empty when unset. */
export const redactSecret = (value: string): string => (value === '' ? '' : '***');

/**
 * A URL with its password as `***`: in the userinfo (`scheme://user:***@host`) and in query parameters that carry one
 * (`?password=***`). The userinfo is taken to run to the URL's last `@`, not the first `/` a parser would stop at, so a
 * password holding unencoded `@` or `/` is still hidden whole (an `@` later in the URL over-redacts; leaking is worse).
 * A value without a scheme is left alone.
 */
export function redactUrlPassword(value: string): string {
  const query = (text: string) => text.replace(/([?&;](?:password|passwd|pwd|secret|token)=)[^&;#]*/gi, '$1***');
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(value)?.[0];
  if (!scheme) return value;
  const rest = value.slice(scheme.length);
  const at = rest.lastIndexOf('@');
  const colon = rest.indexOf(':');
  if (at < 0 || colon < 0 || colon > at) return query(value);
  return query(`${scheme}${rest.slice(0, colon)}:***${rest.slice(at)}`);
}

const invalidSetting = (detail: string) => new ReplayError('config_invalid', detail);

function text(env: string, doc: string, fallback: string): SettingSpec<string> {
  return { env, doc, defaultText: fallback === '' ? '(empty)' : `\`${fallback}\``, parse: (raw) => raw ?? fallback };
}

function integer(env: string, doc: string, fallback: number, min: number, max: number): SettingSpec<number> {
  return {
    env,
    doc,
    defaultText: `\`${fallback}\``,
    parse: (raw) => {
      if (raw === undefined || raw === '') return fallback;
      const value = Number(raw);
      if (!Number.isInteger(value) || value < min || value > max) {
        throw invalidSetting(`${env} must be an integer between ${min} and ${max}, got "${raw}"`);
      }
      return value;
    },
  };
}

function flag(env: string, doc: string, fallback: boolean): SettingSpec<boolean> {
  return {
    env,
    doc,
    defaultText: `\`${fallback}\``,
    parse: (raw) => {
      if (raw === undefined || raw === '') return fallback;
      if (['1', 'true', 'yes'].includes(raw.toLowerCase())) return true;
      if (['0', 'false', 'no'].includes(raw.toLowerCase())) return false;
      throw invalidSetting(`${env} must be true or false, got "${raw}"`);
    },
  };
}

function oneOf<const T extends string>(env: string, doc: string, fallback: T, values: readonly T[]): SettingSpec<T> {
  return {
    env,
    doc: `${doc} One of: ${values.map((v) => `\`${v}\``).join(', ')}.`,
    defaultText: `\`${fallback}\``,
    parse: (raw) => {
      if (raw === undefined || raw === '') return fallback;
      if (!(values as readonly string[]).includes(raw)) {
        throw invalidSetting(`${env} must be one of ${values.join(', ')}, got "${raw}"`);
      }
      return raw as T;
    },
  };
}

function cacheDir(env: Readonly<Record<string, string | undefined>>): string {
  return env.REPLAY_CACHE || join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'replay-pipeline');
}

const MiB = 1024 * 1024;

export const settings = {
  logLevel: oneOf('LOG_LEVEL', 'Minimum level of log lines written to stderr.', 'info', [
    'debug',
    'info',
    'warn',
    'error',
  ]),
  devDemoPort: integer(
    'DEV_DEMO_PORT',
    '`dev` mode: port of the demo page that records itself (0 = any free port).',
    8000,
    0,
    65535,
  ),
  dataDir: text(
    'REPLAY_DATA_DIR',
    'Where `dev` mode keeps its state (Kafka log, blobs, chDB, PGlite) between runs.',
    '.data',
  ),
  toolchainCache: {
    env: 'REPLAY_CACHE',
    doc: 'Toolchain cache filled by `scripts/setup`: Node 24, Kafka jars, the MinIO binary. Outside git.',
    defaultText: '`$XDG_CACHE_HOME/replay-pipeline` or `~/.cache/replay-pipeline`',
    parse: (_raw, env) => cacheDir(env),
  } satisfies SettingSpec<string>,
  kafkaHome: {
    env: 'REPLAY_KAFKA_HOME',
    doc: 'Directory whose `libs/` holds the Apache Kafka broker jars (set by `scripts/env.sh`).',
    defaultText: '`$REPLAY_CACHE/kafka-<version>`',
    parse: (raw, env) => raw || join(cacheDir(env), 'kafka-4.1.1'),
  } satisfies SettingSpec<string>,
  minioBinary: {
    env: 'REPLAY_MINIO_BIN',
    doc: 'The MinIO server binary built by `scripts/setup` (set by `scripts/env.sh`).',
    defaultText: '`$REPLAY_CACHE/minio-<version>/minio`',
    parse: (raw, env) => raw || join(cacheDir(env), 'minio-v0.0.0-20260212201848-7aac2a2c5b7c', 'minio'),
  } satisfies SettingSpec<string>,
  opsToolsDir: {
    env: 'REPLAY_OPS_BIN',
    doc: 'Directory of the deployment validators `scripts/setup` installs for the tests (helm, kubeconform, compose-check, promtool, hadolint, yamllint) and the Kubernetes schemas beside it.',
    defaultText: '`$REPLAY_CACHE/ops/bin`',
    parse: (raw, env) => raw || join(cacheDir(env), 'ops', 'bin'),
  } satisfies SettingSpec<string>,
  javaBinary: text('REPLAY_JAVA', 'Java 17+ used to run the local Kafka broker.', 'java'),
  kafkaHeapMb: integer('REPLAY_KAFKA_HEAP_MB', 'Heap cap of the local Kafka broker JVM, in MiB.', 512, 128, 8192),
  postgresBinDir: text(
    'REPLAY_PG_BIN',
    'Directory with `initdb` and `postgres` for throwaway test clusters; empty = newest `/usr/lib/postgresql/*/bin`.',
    '',
  ),
  redisBinary: text(
    'REPLAY_REDIS',
    'The `redis-server` program the project starts on loopback for `dev` and tests (Debian package redis-server).',
    'redis-server',
  ),
  prometheusBinary: text(
    'REPLAY_PROMETHEUS',
    'The `prometheus` server the scrape test starts on loopback against the running services (Debian package prometheus).',
    'prometheus',
  ),
  chromiumBinary: text(
    'REPLAY_CHROMIUM',
    'Chromium used by browser tests (driven by playwright-core).',
    '/usr/bin/chromium',
  ),

  kafkaBrokers: text('KAFKA_BROKERS', 'Kafka bootstrap servers, comma-separated `host:port`.', '127.0.0.1:9092'),
  kafkaMaxMessageBytes: integer(
    'KAFKA_MAX_MESSAGE_BYTES',
    "Largest recordings message; must not exceed the topic's `max.message.bytes`.",
    20 * MiB,
    MiB,
    100 * MiB,
  ),
  kafkaSessionTimeoutMs: integer(
    'KAFKA_SESSION_TIMEOUT_MS',
    'Consumer group session timeout: how long a dead consumer keeps its partitions.',
    15_000,
    6000,
    300_000,
  ),
  kafkaGroupInstanceId: text(
    'KAFKA_GROUP_INSTANCE_ID',
    'Static group membership id (e.g. the StatefulSet pod name): a restarted consumer gets its partitions back at once, without a rebalance. The price: a static member never leaves the group, so after a stop (a scale-down) its partitions wait KAFKA_SESSION_TIMEOUT_MS before another member takes them. Empty = dynamic membership.',
    '',
  ),
  kafkaTopicPartitions: integer(
    'KAFKA_TOPIC_PARTITIONS',
    '`replay migrate` creates the pipeline topics that do not exist yet with this many partitions each (DLQs get 1); 0 = leave topics to whoever manages them. Existing topics are never changed.',
    4,
    0,
    10000,
  ),
  kafkaTopicReplicationFactor: integer(
    'KAFKA_TOPIC_REPLICATION_FACTOR',
    'Replication factor of the topics `replay migrate` creates; -1 = the broker default (`default.replication.factor`).',
    -1,
    -1,
    32,
  ),
  databaseUrl: {
    ...text(
      'DATABASE_URL',
      'Postgres holding teams, tokens and API keys: `postgres://user@host:port/db`, or `pglite://<dir>` / `pglite://memory` for embedded PGlite. `replay config` shows a password in it as `***`.',
      'pglite://.data/pglite',
    ),
    redact: redactUrlPassword,
  },

  clickhouseUrl: {
    ...text(
      'CLICKHOUSE_URL',
      'ClickHouse: `http(s)://user:password@host:8123/database` for a server, or `chdb://<dir>` for the embedded engine. `replay config` shows the password as `***`.',
      'chdb://.data/clickhouse',
    ),
    redact: redactUrlPassword,
  },

  captureHost: text('CAPTURE_HOST', 'Address the capture HTTP server binds.', '127.0.0.1'),
  capturePort: integer('CAPTURE_PORT', 'Port of the capture HTTP server (0 = any free port).', 8010, 0, 65535),
  capturePublicUrl: text(
    'CAPTURE_PUBLIC_URL',
    "Base URL browsers use to reach capture (written into the remote config posthog-js loads); empty = the request's own host.",
    '',
  ),
  captureMaxBodyBytes: integer(
    'CAPTURE_MAX_BODY_BYTES',
    'Largest request body as sent (compressed).',
    25 * MiB,
    1024,
    1024 * MiB,
  ),
  captureMaxDecompressedBytes: integer(
    'CAPTURE_MAX_DECOMPRESSED_BYTES',
    'Largest request body after decompression.',
    64 * MiB,
    1024,
    1024 * MiB,
  ),
  captureMaxCompressionRatio: integer(
    'CAPTURE_MAX_COMPRESSION_RATIO',
    'Gzip-bomb guard: largest decompressed/compressed ratio for bodies that inflate past 1 MiB.',
    500,
    2,
    100_000,
  ),
  captureTeamRequestsPerSecond: integer(
    'CAPTURE_TEAM_REQUESTS_PER_SECOND',
    'Sustained requests per second per team before 429 (bursts of twice this are allowed).',
    1000,
    1,
    1_000_000,
  ),
  captureSessionBytesPerSecond: integer(
    'CAPTURE_SESSION_BYTES_PER_SECOND',
    'Sustained decompressed bytes per second per session before the session is routed to the overflow topic.',
    MiB,
    1024,
    1024 * MiB,
  ),
  captureSessionBurstBytes: integer(
    'CAPTURE_SESSION_BURST_BYTES',
    'Bytes a session may send at once before its rate counts.',
    32 * MiB,
    1024,
    1024 * MiB,
  ),
  captureOverflowStickySeconds: integer(
    'CAPTURE_OVERFLOW_STICKY_SECONDS',
    'How long a session stays on the overflow topic once routed there.',
    600,
    0,
    86_400,
  ),
  captureMaxInflightBytes: integer(
    'CAPTURE_MAX_INFLIGHT_BYTES',
    'Request bytes capture holds at once, as read and as decoded; a request that does not fit is answered 503 `capture_overloaded` (with `Retry-After`) before its body is read. A request alone always fits.',
    256 * MiB,
    MiB,
    64 * 1024 * MiB,
  ),
  captureMaxConnections: integer(
    'CAPTURE_MAX_CONNECTIONS',
    'Open connections to capture at most; one beyond is closed as it is accepted (0 = no limit).',
    4096,
    0,
    1_000_000,
  ),
  captureHeadersTimeoutMs: integer(
    'CAPTURE_HEADERS_TIMEOUT_MS',
    'A connection that has not sent its request headers within this is closed.',
    5000,
    100,
    300_000,
  ),
  captureRequestTimeoutMs: integer(
    'CAPTURE_REQUEST_TIMEOUT_MS',
    'Longest time to receive a whole request, body included; a slower one is answered 408 `request_timeout` and its connection closed.',
    30_000,
    100,
    3_600_000,
  ),
  captureKeepAliveTimeoutMs: integer(
    'CAPTURE_KEEP_ALIVE_TIMEOUT_MS',
    'How long an idle keep-alive connection to capture stays open.',
    5000,
    100,
    600_000,
  ),
  captureCorsOrigins: {
    env: 'CAPTURE_CORS_ORIGINS',
    doc: 'Origins whose pages may call capture, comma-separated. `*` = any origin, without credentials; a listed origin (`https://app.example.com`) is reflected with `access-control-allow-credentials: true`; both combine (`*,https://app.example.com`). Without `*`, other origins get no CORS headers.',
    defaultText: '`*`',
    parse: (raw): readonly string[] => {
      const origins = (raw === undefined || raw.trim() === '' ? '*' : raw)
        .split(',')
        .map((o) => o.trim())
        .filter((o) => o !== '');
      for (const origin of origins) {
        if (origin !== '*' && !/^https?:\/\/[^/\s?#]+$/.test(origin)) {
          throw invalidSetting(
            `CAPTURE_CORS_ORIGINS must list \`*\` or origins like https://app.example.com (no path), got "${origin}"`,
          );
        }
      }
      return origins;
    },
  } satisfies SettingSpec<readonly string[]>,
  captureTeamCacheSeconds: integer(
    'CAPTURE_TEAM_CACHE_SECONDS',
    'How long a token → team lookup is cached.',
    60,
    0,
    86_400,
  ),
  captureNegativeCacheSeconds: integer(
    'CAPTURE_NEGATIVE_CACHE_SECONDS',
    'How long an unknown token is remembered as unknown.',
    30,
    0,
    86_400,
  ),
  captureCommitTimeoutMs: integer(
    'CAPTURE_COMMIT_TIMEOUT_MS',
    'Longest capture waits for Kafka to commit a request before answering 503.',
    10_000,
    100,
    300_000,
  ),
  captureTransactionalId: {
    env: 'CAPTURE_TRANSACTIONAL_ID',
    doc: 'Kafka transactional id of this capture instance: stable across restarts (a restart fences its predecessor at once) and unique among running capture instances. The default, the hostname, is the pod name on Kubernetes.',
    defaultText: '`capture-<hostname>`',
    parse: (raw) => raw || `capture-${hostname()}`,
  } satisfies SettingSpec<string>,

  blobStore: oneOf('BLOB_STORE', 'Where flushed objects go.', 'fs', ['fs', 's3']),
  blobFsRoot: text('BLOB_FS_ROOT', 'Root directory of the filesystem blob store.', '.data/blobs'),
  s3Bucket: text('S3_BUCKET', 'Bucket for blob objects (BLOB_STORE=s3).', 'session-recordings'),
  s3Endpoint: text('S3_ENDPOINT', 'S3-compatible endpoint (MinIO, R2); empty for AWS.', ''),
  s3Region: text('S3_REGION', 'S3 region.', 'us-east-1'),
  s3ForcePathStyle: flag('S3_FORCE_PATH_STYLE', 'Path-style bucket URLs (MinIO needs them).', true),
  s3AccessKeyId: text('S3_ACCESS_KEY_ID', 'Static S3 credentials; empty = the AWS default credential chain.', ''),
  s3SecretAccessKey: {
    ...text('S3_SECRET_ACCESS_KEY', 'Secret for `S3_ACCESS_KEY_ID` (`replay config` shows `***`).', ''),
    redact: redactSecret,
  },
  s3ServerSideEncryption: oneOf('S3_SSE', 'Server-side encryption of objects (empty = bucket default).', '', [
    '',
    'AES256',
    'aws:kms',
  ]),
  s3ConnectTimeoutMs: integer(
    'S3_CONNECT_TIMEOUT_MS',
    'Longest an S3 connection may take to open before the request fails (and is retried).',
    3000,
    100,
    120_000,
  ),
  s3RequestTimeoutMs: integer(
    'S3_REQUEST_TIMEOUT_MS',
    'Longest one S3 request may take before it fails (and is retried): a hung or black-holed endpoint never holds a flush or a read forever. Multipart parts are 8 MiB, so keep it well above the time one part takes to upload.',
    30_000,
    500,
    600_000,
  ),
  s3KmsKeyId: text('S3_KMS_KEY_ID', 'KMS key for `S3_SSE=aws:kms`.', ''),
  blobPrefix: text(
    'BLOB_PREFIX',
    'Key prefix of blob objects: `{prefix}/{retention}/{yyyy}/{mm}/{dd}/...`.',
    'session_recordings',
  ),
  blobFsSweepIntervalMs: integer(
    'BLOB_FS_SWEEP_INTERVAL_MS',
    'How often `dev` sweeps the filesystem blob store (BLOB_STORE=fs) for objects past their retention class (by the date in the key, as a bucket lifecycle rule expires by creation date); it also sweeps once at start. S3 buckets expire objects by the lifecycle rules `replay migrate` applies.',
    3_600_000,
    1000,
    86_400_000,
  ),
  blobFsSweepMaxObjects: integer(
    'BLOB_FS_SWEEP_MAX_OBJECTS',
    'Most expired objects one sweep of the filesystem blob store deletes; the rest wait for the next sweep (bounds the time and I/O of one sweep).',
    50_000,
    1,
    10_000_000,
  ),
  blobCodec: oneOf('BLOB_CODEC', 'Block codec: LZ4 frames as captured (fast), or zstd (smaller).', 'lz4-frame', [
    'lz4-frame',
    'zstd',
  ]),
  blobSpoolDir: text('BLOB_SPOOL_DIR', 'Local directory of the blob consumer spool files.', '.data/spool'),
  blobFlushIntervalMs: integer(
    'BLOB_FLUSH_INTERVAL_MS',
    'Flush when the oldest message of the batch has waited this long.',
    10_000,
    100,
    3_600_000,
  ),
  blobFlushMaxBytes: integer(
    'BLOB_FLUSH_MAX_BYTES',
    'Flush when the batch holds this many raw bytes.',
    100 * MiB,
    MiB,
    8192 * MiB,
  ),
  blobMinFreeDiskBytes: integer(
    'BLOB_MIN_FREE_DISK_BYTES',
    'Flush early below this much free disk in the spool directory; pause fetching below half of it.',
    1024 * MiB,
    0,
    Number.MAX_SAFE_INTEGER,
  ),
  blobCommitTimeoutMs: integer(
    'BLOB_COMMIT_TIMEOUT_MS',
    "Longest one commit of a flush's transaction waits for the broker before its outcome counts as unknown (then it is retried, and resolved before anything is sent again).",
    30_000,
    500,
    300_000,
  ),
  blobFlushDeadlineMs: integer(
    'BLOB_FLUSH_DEADLINE_MS',
    'A flush still uploading or committing after this long turns `/readyz` not ready (it keeps retrying).',
    60_000,
    1000,
    3_600_000,
  ),
  blobTopic: text(
    'BLOB_TOPIC',
    'Topic the blob consumer reads (the overflow topic for an overflow deployment).',
    'session_recording_snapshot_item_events',
  ),
  blobGroupId: text('BLOB_GROUP_ID', 'Consumer group of the blob consumer.', 'blob-consumer'),
  blobLegacyRetention: oneOf(
    'BLOB_LEGACY_RETENTION',
    'Retention class of envelope-less (parse path) messages.',
    '30d',
    ['30d', '90d', '1y', '5y'],
  ),
  blobTransactionalId: {
    env: 'BLOB_TRANSACTIONAL_ID',
    doc: 'Kafka transactional id of this blob consumer instance: stable across restarts (a restarted process fences its predecessor at once, so `read_committed` readers never wait out the transaction timeout) and unique among running instances. The default, the hostname, is the StatefulSet pod name on Kubernetes.',
    defaultText: '`blob-consumer-<hostname>`',
    parse: (raw) => raw || `blob-consumer-${hostname()}`,
  } satisfies SettingSpec<string>,
  sinkTopic: text('SINK_TOPIC', 'Topic the ClickHouse sink reads.', 'clickhouse_session_replay_events'),
  sinkGroupId: text('SINK_GROUP_ID', 'Consumer group of the ClickHouse sink.', 'clickhouse-sink'),
  sinkInsertIntervalMs: integer(
    'SINK_INSERT_INTERVAL_MS',
    'Insert into ClickHouse at most this often.',
    1000,
    50,
    600_000,
  ),
  sinkMaxRows: integer(
    'SINK_MAX_ROWS',
    'Insert early at this many buffered rows; pause fetching at twice as many.',
    50_000,
    1,
    10_000_000,
  ),
  sinkHost: text('SINK_HOST', 'Address of the sink health/metrics server.', '127.0.0.1'),
  sinkPort: integer('SINK_PORT', 'Port of the sink health/metrics server (0 = any).', 8012, 0, 65535),
  // The behaviour sink (`replay behaviors-sink`, src/uba/behaviors-sink.ts): user_behaviors → ClickHouse, exactly once.
  behaviorsTopic: text('BEHAVIORS_TOPIC', 'Topic the behaviour sink reads.', 'user_behaviors'),
  behaviorsGroupId: text('BEHAVIORS_GROUP_ID', 'Consumer group of the behaviour sink.', 'behaviors-sink'),
  behaviorsInsertIntervalMs: integer(
    'BEHAVIORS_INSERT_INTERVAL_MS',
    'Insert behaviours into ClickHouse at most this often (one insert per table per batch: ClickHouse wants few, large inserts).',
    1000,
    50,
    600_000,
  ),
  behaviorsMaxRows: integer(
    'BEHAVIORS_MAX_ROWS',
    'Insert early at this many buffered behaviours; pause fetching at twice as many.',
    100_000,
    1,
    10_000_000,
  ),
  behaviorsHost: text('BEHAVIORS_HOST', 'Address of the behaviour sink health/metrics server.', '127.0.0.1'),
  behaviorsPort: integer(
    'BEHAVIORS_PORT',
    'Port of the behaviour sink health/metrics server (0 = any).',
    8017,
    0,
    65535,
  ),
  // The realtime sink (`replay realtime-sink`, src/uba/realtime/): user_behaviors → Redis, exactly once.
  redisUrl: {
    ...text(
      'REDIS_URL',
      'Redis of the realtime sink: `redis://[user:password@]host:port[/db]`. `replay config` shows the password as `***`.',
      'redis://127.0.0.1:6379',
    ),
    redact: redactUrlPassword,
  },
  redisConnectTimeoutMs: integer(
    'REDIS_CONNECT_TIMEOUT_MS',
    'Longest a Redis connection (TCP and handshake) may take.',
    2000,
    100,
    60_000,
  ),
  redisCommandTimeoutMs: integer(
    'REDIS_COMMAND_TIMEOUT_MS',
    'Longest one Redis command (a realtime script) may take before it counts as failed and is retried.',
    3000,
    100,
    60_000,
  ),
  realtimeTopic: text('REALTIME_TOPIC', 'Topic the realtime sink reads.', 'user_behaviors'),
  realtimeGroupId: text('REALTIME_GROUP_ID', 'Consumer group of the realtime sink.', 'realtime-sink'),
  realtimeOffsetGroup: text(
    'REALTIME_OFFSET_GROUP',
    'The `{group}` of the applied-offset keys `realtime:offset:{group}:{topic}:{partition}` in Redis; empty = `REALTIME_GROUP_ID`. Keep it when renaming the consumer group, or the new group applies everything again.',
    '',
  ),
  realtimeFlushIntervalMs: integer(
    'REALTIME_FLUSH_INTERVAL_MS',
    'Write to Redis at most this often (one script per partition).',
    500,
    10,
    600_000,
  ),
  realtimeFlushMaxMessages: integer(
    'REALTIME_FLUSH_MAX_MESSAGES',
    'Write early at this many buffered behaviours; pause fetching at twice as many. Each pause costs a fetch round trip when fetching resumes, so a small value caps throughput (1000 held the sink to 2k behaviours/s in bench/uba/throughput.ts).',
    10_000,
    1,
    100_000,
  ),
  realtimeActionWeights: {
    env: 'REALTIME_ACTION_WEIGHTS',
    doc: "How much one behaviour heats its item, per action (`action=weight,...`, weights ≥ 0). An action not listed, or of weight 0, counts in the minute metrics only: it neither heats items nor enters the user's recent items.",
    defaultText: '`impression=0,view=1,click=2,like=3,share=4,add_cart=5,order=10`',
    parse: (raw) => {
      const weights: Record<string, number> = Object.create(null);
      for (const part of (raw || 'impression=0,view=1,click=2,like=3,share=4,add_cart=5,order=10').split(',')) {
        const [action, weight, extra] = part.split('=').map((s) => s.trim());
        const value = Number(weight);
        if (!action || !weight || extra !== undefined || !Number.isFinite(value) || value < 0) {
          throw invalidSetting(`REALTIME_ACTION_WEIGHTS must be action=weight pairs (weights ≥ 0), got "${raw}"`);
        }
        weights[action] = value;
      }
      return weights as Readonly<Record<string, number>>;
    },
  } satisfies SettingSpec<Readonly<Record<string, number>>>,
  realtimeHalfLifeS: integer(
    'REALTIME_HALF_LIFE_S',
    'Half-life of hot item scores, in seconds: a behaviour this much older weighs half as much.',
    3600,
    1,
    365 * 86_400,
  ),
  realtimeHotMaxItems: integer(
    'REALTIME_HOT_MAX_ITEMS',
    'Items kept per hot-items ZSET (the hottest; colder ones are dropped).',
    1000,
    1,
    1_000_000,
  ),
  realtimeHotTtlS: integer(
    'REALTIME_HOT_TTL_S',
    'A hot-items ZSET expires this many seconds after its last update.',
    172_800,
    60,
    365 * 86_400,
  ),
  realtimeMetricsTtlS: integer(
    'REALTIME_METRICS_TTL_S',
    'A minute of realtime metrics expires this many seconds after the minute began.',
    7200,
    60,
    30 * 86_400,
  ),
  realtimeRecentMax: integer(
    'REALTIME_RECENT_MAX',
    "Items kept in a user's recent-items LIST (newest first).",
    50,
    1,
    10_000,
  ),
  realtimeRecentTtlS: integer(
    'REALTIME_RECENT_TTL_S',
    "A user's recent-items LIST expires this many seconds after its last update.",
    604_800,
    60,
    365 * 86_400,
  ),
  realtimeOffsetTtlS: integer(
    'REALTIME_OFFSET_TTL_S',
    "An applied-offset key expires this many seconds after its last update; keep it above the topic retention and the broker's `offsets.retention.minutes`, or a replay after it expired applies again.",
    2_592_000,
    3600,
    3650 * 86_400,
  ),
  realtimeHost: text('REALTIME_HOST', 'Address of the realtime sink health/metrics server.', '127.0.0.1'),
  realtimePort: integer('REALTIME_PORT', 'Port of the realtime sink health/metrics server (0 = any).', 8016, 0, 65535),
  blobFaultDelayBeforeCommitMs: integer(
    'BLOB_FAULT_DELAY_BEFORE_COMMIT_MS',
    'Fault-injection aid for crash tests: wait this long between writing objects and committing them. Keep 0 in production.',
    0,
    0,
    600_000,
  ),
  apiHost: text('API_HOST', 'Address the replay API (and player page) binds.', '127.0.0.1'),
  apiPort: integer('API_PORT', 'Port of the replay API and player page (0 = any free port).', 8013, 0, 65535),
  apiMaxBlocksPerRequest: integer(
    'API_MAX_BLOCKS_PER_REQUEST',
    'Most blocks one `snapshots?blocks=i-j` request decodes (bounds the memory and time of one request).',
    100,
    1,
    10_000,
  ),
  apiMaxConcurrentDecodes: integer(
    'API_MAX_CONCURRENT_DECODES',
    'Most block reads and decodes the replay API runs at once (one per `?blocks=` stream or raw block read, each holding about one block in memory). Past it a request waits up to `API_DECODE_WAIT_MS`, then gets 503 `api_overloaded`.',
    16,
    1,
    1024,
  ),
  apiDecodeWaitMs: integer(
    'API_DECODE_WAIT_MS',
    'How long a replay API request waits for a decode slot before 503 `api_overloaded` (0 = refuse at once). At most `API_MAX_CONCURRENT_DECODES` requests wait; more are refused at once.',
    1000,
    0,
    60_000,
  ),
  apiMaxBlockBytes: integer(
    'API_MAX_BLOCK_BYTES',
    'Most bytes one stored block may inflate to when the replay API decodes it (bounded while it inflates); a larger block is served as a `missing_block` line with code `block_too_large`. Decode memory stays under about 2 × this × `API_MAX_CONCURRENT_DECODES`.',
    256 * MiB,
    MiB,
    512 * MiB,
  ),
  apiAnalyticsMaxExecutionS: integer(
    'API_ANALYTICS_MAX_EXECUTION_S',
    'Longest one analytics API query may run in ClickHouse (`max_execution_time`); past it the request gets 503 `clickhouse_unavailable`.',
    30,
    1,
    600,
  ),
  apiRealtimeRedisTimeoutMs: integer(
    'API_REALTIME_REDIS_TIMEOUT_MS',
    'Longest the analytics API\'s `realtime` route waits for Redis (`REDIS_URL`) for one answer; past it, or when Redis fails, it answers from ClickHouse with `"source": "clickhouse"`. A connection still being made (up to `REDIS_CONNECT_TIMEOUT_MS`) goes on for the next request.',
    250,
    10,
    10_000,
  ),
  apiDeletionLeaseMs: integer(
    'API_DELETION_LEASE_MS',
    'How long an API process holds a deletion request between two batches; a request whose worker died is taken over by another API process (or the restarted one) this long after its last batch.',
    30_000,
    1000,
    600_000,
  ),
  blobConsumerHost: text('BLOB_CONSUMER_HOST', 'Address of the blob consumer health/metrics server.', '127.0.0.1'),
  blobConsumerPort: integer(
    'BLOB_CONSUMER_PORT',
    'Port of the blob consumer health/metrics server (0 = any).',
    8011,
    0,
    65535,
  ),
} as const;

type SettingsTable = typeof settings;
export type Config = { readonly [K in keyof SettingsTable]: ReturnType<SettingsTable[K]['parse']> };

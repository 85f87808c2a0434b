import type { CommandEntry } from './command.ts';

// The CLI's command catalogue: each command's name, summary and usage (written here and nowhere else) and a dynamic
// import of its module. main.ts imports only this file, so `replay --help` and `replay <command> --help` load no
// command module, and a command loads only its own: `replay capture` never loads chDB, the AWS SDK or playwright-core.
// Import nothing here but types (test/unit/cli/lazy-commands.test.ts checks what the help loads).

/** `replay api-key --help`, which the command also prints when its action is missing or unknown. */
export const apiKeyUsage = `replay api-key create --team <id> [--team <id> ...] [--label <text>] [--scope delete]
replay api-key list
replay api-key revoke <id>

Personal API keys for the replay API, in DATABASE_URL. \`create\` prints the key once: only its SHA-256 is stored.
A key reads only the teams it was created for; \`--scope delete\` also lets it call the delete routes for them.
\`revoke\` takes effect on the next request.`;

const dev: CommandEntry = {
  name: 'dev',
  summary: 'Run capture, blob consumer, sink, API and player in one process on the embedded defaults.',
  usage: `replay dev

Starts a local single-node Kafka broker, PGlite and chDB under REPLAY_DATA_DIR (default .data), runs capture on
CAPTURE_PORT, the blob consumer (filesystem blob store under the data directory) and a second one for the overflow
topic that capture routes hot sessions to, the ClickHouse sink, and the replay API with the player page on API_PORT;
seeds a demo team and an API key for it, and serves a demo page (posthog-js recording against capture) on
DEV_DEMO_PORT. Prints the URLs of the demo page and of the player.
Data persists between runs, within retention: at start and every BLOB_FS_SWEEP_INTERVAL_MS it deletes blob files
past their retention class (by the date in their key). Ctrl-C stops everything cleanly.`,
  load: async () => (await import('./dev-command.ts')).devCommand,
};

const capture: CommandEntry = {
  name: 'capture',
  summary: 'Run the capture HTTP service (posthog-js recording uploads → Kafka).',
  usage: `replay capture

Serves POST /s/ (posthog-js session recording uploads), the remote config and recorder posthog-js loads,
/healthz, /readyz and /metrics on CAPTURE_HOST:CAPTURE_PORT. Tokens resolve through DATABASE_URL; messages go to
KAFKA_BROKERS. SIGTERM/SIGINT: stop accepting, finish in-flight requests, exit.`,
  load: async () => (await import('./capture-command.ts')).captureCommand,
};

const blobConsumer: CommandEntry = {
  name: 'blob-consumer',
  summary: 'Run the blob consumer (recordings topic → spool → one object per flush → summary rows, exactly once).',
  usage: `replay blob-consumer

Consumes BLOB_TOPIC in group BLOB_GROUP_ID, spools each session's frames in BLOB_SPOOL_DIR, and every
BLOB_FLUSH_INTERVAL_MS (or BLOB_FLUSH_MAX_BYTES) writes one object per retention class to the blob store
(BLOB_STORE=fs|s3), then commits the summary rows to clickhouse_session_replay_events together with the consumer
offsets in one Kafka transaction. Health and metrics on BLOB_CONSUMER_HOST:BLOB_CONSUMER_PORT.
SIGTERM/SIGINT: stop fetching, flush, commit, leave the group (with KAFKA_GROUP_INSTANCE_ID set, a static
member sends no leave: its partitions wait KAFKA_SESSION_TIMEOUT_MS for it to come back before they move).`,
  load: async () => (await import('./blob-consumer-command.ts')).blobConsumerCommand,
};

const sink: CommandEntry = {
  name: 'sink',
  summary: 'Run the ClickHouse sink (summary rows → session_replay_events, batched, idempotent).',
  usage: `replay sink

Reads SINK_TOPIC (read_committed) in group SINK_GROUP_ID and inserts the summary rows into session_replay_events on
CLICKHOUSE_URL at most every SINK_INSERT_INTERVAL_MS, committing offsets after each insert. Applies the ClickHouse
migrations first. Health and metrics on SINK_HOST:SINK_PORT.`,
  load: async () => (await import('./sink-command.ts')).sinkCommand,
};

const behaviorsSink: CommandEntry = {
  name: 'behaviors-sink',
  summary: 'Run the behaviour sink (user_behaviors → ClickHouse raw table, timeline index, roll-ups; exactly once).',
  usage: `replay behaviors-sink

Reads BEHAVIORS_TOPIC in group BEHAVIORS_GROUP_ID and inserts into CLICKHOUSE_URL at most every
BEHAVIORS_INSERT_INTERVAL_MS (or at BEHAVIORS_MAX_ROWS): user_behaviors, whose materialized views fill the timeline
index, the roll-ups and the audiences in the same insert, and user_watches. Offsets are committed after the inserts;
inserts carry deduplication tokens from their topic positions, a restart skips offsets ClickHouse holds, and a
behaviour whose event_id is stored already is left out. Poison goes to clickhouse_user_behaviors_dlq with its code.
Applies the ClickHouse migrations first. Health and metrics on BEHAVIORS_HOST:BEHAVIORS_PORT. See docs/uba.md.`,
  load: async () => (await import('./behaviors-sink-command.ts')).behaviorsSinkCommand,
};

const realtimeSink: CommandEntry = {
  name: 'realtime-sink',
  summary: 'Run the realtime sink (user_behaviors → Redis hot items, minute metrics, recent items; exactly once).',
  usage: `replay realtime-sink

Reads REALTIME_TOPIC in group REALTIME_GROUP_ID and writes to REDIS_URL at most every REALTIME_FLUSH_INTERVAL_MS
(or at REALTIME_FLUSH_MAX_MESSAGES): hot:items:{tenant}:{scenario} (ZSET, time-decayed scores),
metrics:realtime:{tenant}:{scenario}:{yyyyMMddHHmm} (HASH of action counts per minute) and
user:recent:{tenant}:{user} (capped LIST). One Lua script per partition applies a batch and its applied offset
atomically, so a replay changes nothing; Kafka offsets are committed after it. Poison goes to user_behaviors_dlq.
Health and metrics on REALTIME_HOST:REALTIME_PORT. See docs/uba.md.`,
  load: async () => (await import('./realtime-sink-command.ts')).realtimeSinkCommand,
};

const api: CommandEntry = {
  name: 'api',
  summary: 'Run the replay API and the player page (sessions from ClickHouse, events from the blob store).',
  usage: `replay api

Serves the replay API (GET /api/projects/:team/session_recordings[/:session[/snapshots]]) and the player page
(/player) on API_HOST:API_PORT, with /healthz, /readyz and /metrics. Sessions come from CLICKHOUSE_URL, blocks from
the blob store (BLOB_STORE ...), API keys and teams from DATABASE_URL. Create keys with \`replay api-key create\`.
See docs/replay-api.md.`,
  load: async () => (await import('./api-command.ts')).apiCommand,
};

const apiKey: CommandEntry = {
  name: 'api-key',
  summary: 'Create, list or revoke personal API keys for the replay API.',
  usage: apiKeyUsage,
  load: async () => (await import('./api-key-command.ts')).apiKeyCommand,
};

export const teamUsage = `replay team create --name <text> [--retention 30d|90d|1y|5y]
replay team list

Teams (projects) in DATABASE_URL. \`create\` prints the new team's id and its project token: the token goes into
posthog-js (\`posthog.init(token, {api_host: <capture URL>})\`); then create an API key for the team with
\`replay api-key create --team <id>\`. --retention sets the retention class of its new recordings (default 30d).`;

const team: CommandEntry = {
  name: 'team',
  summary: 'Create and list teams and their project tokens (Postgres).',
  usage: teamUsage,
  load: async () => (await import('./team-command.ts')).teamCommand,
};

export const deleteUsage = `replay delete session --team <id> <session_id>
replay delete person --team <id> <distinct_id>
replay delete sessions --team <id> [--from <ISO date>] [--to <ISO date>] [--distinct-id <id>] [--url-contains <text>]
replay delete status --team <id> <request id>

Deletes recordings for good (DESIGN §3.9), as the API's delete routes do: the sessions leave listings and answer 404
at once, their blocks are zeroed in the objects they share with other sessions, and their summary rows become
is_deleted markers. \`person\` also deletes the distinct id's behaviours (ClickHouse) and recent items (Redis).
\`sessions\` takes a filter (at least one option; --from inclusive, --to exclusive, by session start). Each run is a
deletion request in DATABASE_URL (the audit log); progress goes to stderr. It waits (up to an hour) while an API
process's worker holds the queue, and a request it leaves unfinished is resumed by the next worker.`;

const deleteRecordings: CommandEntry = {
  name: 'delete',
  summary: 'Delete a session, a person, or every session a filter matches (bytes erased, audit logged).',
  usage: deleteUsage,
  load: async () => (await import('./delete-command.ts')).deleteCommand,
};

const reindex: CommandEntry = {
  name: 'reindex',
  summary: 'Rebuild session_replay_events rows for a time range from the object footers in the blob store alone.',
  usage: `replay reindex --from 2026-11-01 --to 2026-11-22

Reads every object under BLOB_PREFIX written in [--from, --to) (ISO dates or times, UTC), rebuilds one summary row
per block from its footer, and inserts them into CLICKHOUSE_URL. Blocks of objects whose flush never committed are
skipped when a newer object holds the same messages, and so are deleted sessions (erased blocks are marked in their
footers; DATABASE_URL's deletion records cover those still being erased). Each object's rows carry a deduplication
token, so running the same range twice stores them once; clear the range first when rebuilding a table that still
holds rows.`,
  load: async () => (await import('./reindex-command.ts')).reindexCommand,
};

const orphans: CommandEntry = {
  name: 'orphans',
  summary: 'List (or --delete) blob objects that no committed summary row points at.',
  usage: `replay orphans [--min-age-minutes 60] [--max-age-hours 48] [--delete]

A flush whose transaction did not commit (crash between upload and commit, aborted transaction) leaves its object
behind; its data is read again and stored in a new object, so the old one only costs space. This lists objects under
BLOB_PREFIX that no committed row of clickhouse_session_replay_events points at.
  --min-age-minutes N  skip objects younger than this: their flush may still be committing (default 60)
  --max-age-hours N    skip objects older than this: the topic may no longer hold their rows (default 48;
                       keep it below the summary topic's retention)
  --delete             delete the orphans found`,
  load: async () => (await import('./orphans-command.ts')).orphansCommand,
};

const migrate: CommandEntry = {
  name: 'migrate',
  summary:
    "Apply pending schema migrations (Postgres, ClickHouse), create missing Kafka topics, set the bucket's lifecycle rules, idempotently.",
  usage: `replay migrate

Applies schema/postgres/*.sql to DATABASE_URL and schema/clickhouse/*.sql to CLICKHOUSE_URL, each file once, in
order, recorded in a schema_migrations table, then creates the pipeline's Kafka topics that do not exist yet on
KAFKA_BROKERS (KAFKA_TOPIC_PARTITIONS partitions each, 0 = skip; existing topics are left as they are). With
BLOB_STORE=s3 it then REPLACES the lifecycle configuration of S3_BUCKET with exactly one rule per retention class:
objects under BLOB_PREFIX/30d/, /90d/, /1y/, /5y/ expire after 30, 90, 365, 1825 days, and multipart uploads left
unfinished there are aborted after 1 day (rules added by hand are dropped); it prints the rules the bucket holds.
A bucket that does not exist is not created: migrate fails with bucket_missing. Running it again, or from two
processes at once, is safe (Postgres: an advisory lock; ClickHouse: every statement is idempotent; the bucket gets
the same rules).`,
  load: async () => (await import('./migrate-command.ts')).migrateCommand,
};

const doctor: CommandEntry = {
  name: 'doctor',
  summary: 'Check that the programs the local services need are installed.',
  usage: `replay doctor

Checks Node, Java and the Kafka jars, the MinIO binary, PostgreSQL and Chromium. Exit code 1 when one is missing,
with one sentence saying how to get it (usually: run scripts/setup).`,
  load: async () => (await import('./doctor-command.ts')).doctorCommand,
};

const healthcheck: CommandEntry = {
  name: 'healthcheck',
  summary: "Probe a running role's /healthz (or /readyz): the container HEALTHCHECK.",
  usage: `replay healthcheck [<role>] [--ready]

GETs /healthz (with --ready: /readyz) of a role running on this host, on the address and port its settings give
(CAPTURE_PORT, BLOB_CONSUMER_PORT, SINK_PORT, BEHAVIORS_PORT, REALTIME_PORT, API_PORT), within 3 s. Exit 0 when it
answers 200, 1 otherwise. Without <role>, the role is read from the container's main process (PID 1), so the image
needs one HEALTHCHECK line; a one-shot role (migrate) counts as healthy.
Roles: capture, blob-consumer, sink, behaviors-sink, realtime-sink, api.`,
  load: async () => (await import('./healthcheck-command.ts')).healthcheckCommand,
};

const config: CommandEntry = {
  name: 'config',
  summary: 'Print the effective configuration, or the reference table with --markdown.',
  usage: `replay config [--markdown]

Prints every setting with its effective value (from the environment or its default) as JSON; secrets (S3 secret
key, passwords in DATABASE_URL and CLICKHOUSE_URL) are shown as ***.
  --markdown   print the configuration reference (docs/configuration.md) instead`,
  load: async () => (await import('./config-command.ts')).configCommand,
};

const errors: CommandEntry = {
  name: 'errors',
  summary: 'Print the error-code catalogue (--markdown for the docs table, JSON otherwise).',
  usage: `replay errors [--markdown]

Lists every stable error code with its HTTP status, type, retriable flag and meaning.`,
  load: async () => (await import('./config-command.ts')).errorsCommand,
};

const metrics: CommandEntry = {
  name: 'metrics',
  summary: 'Print the metrics catalogue of every service (--markdown for docs/metrics.md, JSON otherwise).',
  usage: `replay metrics [--markdown]

Lists every Prometheus metric each service exposes on /metrics: name, type, labels and meaning.`,
  load: async () => (await import('./metrics-command.ts')).metricsCommand,
};

/** Every command, in the order `replay --help` lists them. */
export const commands: readonly CommandEntry[] = [
  dev,
  capture,
  blobConsumer,
  sink,
  behaviorsSink,
  realtimeSink,
  api,
  team,
  apiKey,
  deleteRecordings,
  reindex,
  orphans,
  migrate,
  doctor,
  healthcheck,
  config,
  errors,
  metrics,
];

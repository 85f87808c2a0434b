import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Gauge } from 'prom-client';
import { ReplayError } from '../errors/index.ts';
import { sendJson } from '../http/respond.ts';
import { Router } from '../http/router.ts';
import { type HttpLimits, type RunningHttpService, startHttpService } from '../http/server.ts';
import { topicNames } from '../kafka/topics.ts';
import type { ProducedRecord } from '../kafka/transactional-producer.ts';
import type { Logger } from '../logging/logger.ts';
import { createMetricsRegistry } from '../metrics/registry.ts';
import { MAX_TOKEN_LENGTH } from '../recordings/bounds.ts';
import { isConsoleEvent } from '../recordings/summary.ts';
import type { Team } from '../teams/team-store.ts';
import type { BodyLimits } from './body-encoding.ts';
import { buildRecordingMessages } from './build-messages.ts';
import { createCaptureMetrics } from './capture-metrics.ts';
import { InflightBudget } from './inflight-budget.ts';
import { type DroppedEvents, parseSnapshotRequest } from './parse-snapshots.ts';
import { addPosthogJsRoutes } from './posthog-js-routes.ts';
import { readUpload } from './read-upload.ts';
import { OverflowRouter, TokenBuckets } from './token-buckets.ts';

export interface CaptureOptions {
  readonly host: string;
  readonly port: number;
  readonly log: Logger;
  /** Resolves a project token (cached); rejects when the team store is unreachable. */
  readonly teamByToken: (token: string) => Promise<Team | undefined>;
  /** All-or-nothing send of one request's messages (the transactional producer). */
  readonly send: (records: readonly ProducedRecord[]) => Promise<void>;
  readonly producerReady: () => boolean;
  readonly maxBodyBytes: number;
  readonly bodyLimits: BodyLimits;
  readonly maxMessageBytes: number;
  readonly teamRequestsPerSecond: number;
  readonly sessionBytesPerSecond: number;
  readonly sessionBurstBytes: number;
  readonly overflowStickyMs: number;
  /** Request bytes held at once, read and decoded (`CAPTURE_MAX_INFLIGHT_BYTES`; default 256 MiB). */
  readonly maxInflightBytes?: number | undefined;
  /** Connection limit and timeouts of the HTTP server (defaults: `defaultHttpLimits`). */
  readonly httpLimits?: HttpLimits | undefined;
  /** `CAPTURE_CORS_ORIGINS` (default `*`: any origin, without credentials). */
  readonly corsOrigins?: readonly string[] | undefined;
}

export interface CaptureService extends RunningHttpService {
  readonly metrics: ReturnType<typeof createCaptureMetrics>;
}

/**
 * The capture HTTP service: `POST /s/` turns a posthog-js upload into recordings-topic messages and answers
 * `200 {"status":1}` only once all of them are committed to Kafka. Every rejection is a catalogue error.
 */
export async function startCaptureService(options: CaptureOptions): Promise<CaptureService> {
  const registry = createMetricsRegistry('capture');
  const metrics = createCaptureMetrics(registry);
  const teamLimits = new TokenBuckets({
    ratePerSecond: options.teamRequestsPerSecond,
    burst: options.teamRequestsPerSecond * 2,
  });
  const overflow = new OverflowRouter({
    ratePerSecond: options.sessionBytesPerSecond,
    burst: options.sessionBurstBytes,
    stickyMs: options.overflowStickyMs,
  });

  const inflight = new Gauge({
    name: 'capture_inflight_bytes',
    help: 'Request bytes held now (read off the socket and decoded), against CAPTURE_MAX_INFLIGHT_BYTES.',
    registers: [registry],
  });
  const budget = new InflightBudget(options.maxInflightBytes ?? 256 * 1024 * 1024, (used) => inflight.set(used));

  const resolveTeam = async (token: string | undefined): Promise<Team> => {
    if (token === undefined || token === '') throw new ReplayError('missing_token', 'the request carries no token');
    if (token.length > MAX_TOKEN_LENGTH) {
      throw new ReplayError('invalid_token', `the project token is longer than ${MAX_TOKEN_LENGTH} characters`);
    }
    let team: Team | undefined;
    try {
      team = await options.teamByToken(token);
    } catch (error) {
      throw new ReplayError('team_lookup_failed', 'could not look up the token; retry later', { cause: error });
    }
    if (!team) throw new ReplayError('invalid_token', 'unknown project token');
    if (!team.sessionRecordingEnabled) {
      throw new ReplayError('recordings_disabled', 'session recording is disabled for this project');
    }
    return team;
  };

  /** Resolves a token and takes one request from its team's rate: what must pass before a body is worked on. */
  const admit = async (token: string): Promise<Team> => {
    const team = await resolveTeam(token);
    if (!teamLimits.take(String(team.id))) {
      throw new ReplayError('rate_limited', `project ${team.id} is over its request rate; retry later`);
    }
    return team;
  };

  /**
   * Takes one upload; resolves with what was dropped for breaking input bounds (the rest is committed). The order
   * of the checks is the point (DESIGN §3.5.1): everything that can refuse a request cheaply runs before its body is
   * inflated and parsed. A token in the query string is authenticated and rate-limited before the body is read at
   * all; a token in the body (posthog-js) is found while the body is read and inflated (read-upload.ts) and admitted
   * before anything parses it, and for a body over 1 MiB before the rest of it is read or inflated.
   */
  const handleRecording = async (req: IncomingMessage, url: URL): Promise<DroppedEvents> => {
    if (!options.producerReady()) throw new ReplayError('kafka_unavailable', 'Kafka is unavailable; retry later');
    const queryToken = url.searchParams.get('token') || url.searchParams.get('api_key') || undefined;
    let admitted: { token: string; team: Team } | undefined;
    if (queryToken !== undefined) admitted = { token: queryToken, team: await admit(queryToken) };

    const lease = budget.lease();
    try {
      const upload = await readUpload(req, url, {
        maxBodyBytes: options.maxBodyBytes,
        bodyLimits: options.bodyLimits,
        lease,
        authenticate: admitted
          ? undefined
          : async (token) => {
              admitted = { token, team: await admit(token) };
            },
      });
      metrics.wireBytes.inc(upload.wireBytes);
      metrics.decodedBytes.inc(upload.json.length);
      if (!admitted) throw new ReplayError('missing_token', 'the request carries no token');

      const request = parseSnapshotRequest(upload.json);
      // The team is the one of the token parseSnapshotRequest reads (as ever); the token admitted above was the first
      // one found, which for posthog-js is the same. Should they differ, this one must pass as well.
      const token = request.token ?? queryToken;
      if (token === undefined) throw new ReplayError('missing_token', 'the request carries no token');
      const team = token === admitted.token ? admitted.team : await admit(token);
      return await produce(team, request);
    } finally {
      lease.release();
    }
  };

  const produce = async (team: Team, request: ReturnType<typeof parseSnapshotRequest>): Promise<DroppedEvents> => {
    const requestId = randomUUID();
    const capturedAt = Date.now();
    const records: ProducedRecord[] = [];
    for (const session of request.sessions) {
      const events = team.consoleLogCaptureEnabled
        ? session.events
        : session.events.filter((e) => !isConsoleEvent(e.event));
      if (events.length === 0) continue;
      const messages = buildRecordingMessages(
        { ...session, events, team },
        { maxMessageBytes: options.maxMessageBytes, requestId, capturedAt },
      );
      const rawBytes = messages.reduce((sum, m) => sum + m.header.rawBytes, 0);
      const toOverflow = overflow.shouldOverflow(`${team.id}:${session.sessionId}`, rawBytes);
      if (toOverflow) metrics.overflowSessions.inc();
      const topic = toOverflow ? topicNames.recordingsOverflow : topicNames.recordings;
      for (const message of messages) {
        records.push({ topic, key: message.key, value: message.value, headers: message.headers });
      }
    }

    const started = process.hrtime.bigint();
    let outcome = 'failed';
    try {
      await options.send(records);
      outcome = 'committed';
    } finally {
      metrics.produceLatency.observe({ outcome }, Number(process.hrtime.bigint() - started) / 1e9);
    }
    metrics.events.inc(request.eventCount);
    for (const record of records) {
      metrics.producedMessages.inc({ topic: record.topic });
      metrics.producedBytes.inc({ topic: record.topic }, record.value.length);
    }
    return request.dropped;
  };

  const router = new Router();
  router.on('POST', '/s', async ({ req, res, url }) => {
    let dropped: DroppedEvents;
    try {
      dropped = await handleRecording(req, url);
    } catch (error) {
      if (error instanceof ReplayError) metrics.rejections.inc({ code: error.code });
      throw error;
    }
    for (const [reason, count] of Object.entries(dropped.byCode)) metrics.droppedEvents.inc({ reason }, count);
    sendJson(
      res,
      200,
      dropped.count === 0
        ? { status: 1 }
        : { status: 1, dropped: dropped.count, dropped_by_code: dropped.byCode, dropped_events: dropped.examples },
    );
  });
  addPosthogJsRoutes(router, options.teamByToken);

  const http = await startHttpService(
    {
      router,
      registry,
      log: options.log,
      ready: options.producerReady,
      cors: { origins: options.corsOrigins ?? ['*'] },
      limits: options.httpLimits,
    },
    { host: options.host, port: options.port },
  );
  options.log.info('capture listening', { url: http.url });
  return { ...http, metrics };
}

import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ReplayError } from '../errors/index.ts';
import { readBody } from '../http/body.ts';
import { sendJson } from '../http/respond.ts';
import { Router } from '../http/router.ts';
import { type RunningHttpService, startHttpService } from '../http/server.ts';
import { topicNames } from '../kafka/topics.ts';
import type { ProducedRecord } from '../kafka/transactional-producer.ts';
import type { Logger } from '../logging/logger.ts';
import { createMetricsRegistry } from '../metrics/registry.ts';
import { isConsoleEvent } from '../recordings/summary.ts';
import type { Team } from '../teams/team-store.ts';
import { buildRecordingMessages } from './build-messages.ts';
import { createCaptureMetrics } from './capture-metrics.ts';
import { type BodyLimits, decodeBody } from './decode-body.ts';
import { parseSnapshotRequest } from './parse-snapshots.ts';
import { addPosthogJsRoutes } from './posthog-js-routes.ts';
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

  const resolveTeam = async (token: string | undefined): Promise<Team> => {
    if (token === undefined || token === '') throw new ReplayError('missing_token', 'the request carries no token');
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

  const handleRecording = async (req: IncomingMessage, url: URL): Promise<void> => {
    if (!options.producerReady()) throw new ReplayError('kafka_unavailable', 'Kafka is unavailable; retry later');
    const wire = await readBody(req, options.maxBodyBytes);
    metrics.wireBytes.inc(wire.length);
    const json = await decodeBody(
      {
        bytes: wire,
        contentEncoding: req.headers['content-encoding'],
        contentType: req.headers['content-type'],
        compression: url.searchParams.get('compression'),
      },
      options.bodyLimits,
    );
    metrics.decodedBytes.inc(json.length);
    const request = parseSnapshotRequest(json);
    const team = await resolveTeam(request.token ?? url.searchParams.get('token') ?? undefined);
    if (!teamLimits.take(String(team.id))) {
      throw new ReplayError('rate_limited', `project ${team.id} is over its request rate; retry later`);
    }

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
  };

  const router = new Router();
  router.on('POST', '/s', async ({ req, res, url }) => {
    try {
      await handleRecording(req, url);
    } catch (error) {
      if (error instanceof ReplayError) metrics.rejections.inc({ code: error.code });
      throw error;
    }
    sendJson(res, 200, { status: 1 });
  });
  addPosthogJsRoutes(router, options.teamByToken);

  const http = await startHttpService(
    { router, registry, log: options.log, ready: options.producerReady, cors: true },
    { host: options.host, port: options.port },
  );
  options.log.info('capture listening', { url: http.url });
  return { ...http, metrics };
}

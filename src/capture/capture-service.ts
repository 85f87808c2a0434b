import type { IncomingMessage } from 'node:http';
import type { FrameAllocator } from '../codec/lz4-frames.ts';
import { ReplayError } from '../errors/index.ts';
import { sendJson } from '../http/respond.ts';
import { Router } from '../http/router.ts';
import { type HttpLimits, type RunningHttpService, startHttpService } from '../http/server.ts';
import { topicNames } from '../kafka/topics.ts';
import type { ProducedRecord } from '../kafka/transactional-producer.ts';
import type { Logger } from '../logging/logger.ts';
import { createMetricsRegistry } from '../metrics/registry.ts';
import { nativeAddons } from '../native/index.ts';
import { isConsoleEvent } from '../recordings/summary.ts';
import type { Team } from '../teams/team-store.ts';
import { addBehaviorRoutes } from './behavior-routes.ts';
import type { BodyLimits } from './body-encoding.ts';
import { BufferPool, type PooledBuffer } from './buffer-pool.ts';
import { buildRecordingMessages } from './build-messages.ts';
import { createCaptureMetrics } from './capture-metrics.ts';
import { commitRecords } from './commit-records.ts';
import { InflightBudget } from './inflight-budget.ts';
import { type DroppedEvents, parseSnapshotRequest, type SnapshotRequest } from './parse-snapshots.ts';
import { addPosthogJsRoutes } from './posthog-js-routes.ts';
import { type IntakeRoute, RequestIntake } from './request-intake.ts';
import { recordingEnabled, TeamAdmission } from './team-admission.ts';
import { OverflowRouter } from './token-buckets.ts';

export interface CaptureOptions {
  readonly host: string;
  readonly port: number;
  readonly log: Logger;
  /** Resolves a project token (cached); rejects when the team store is unreachable. */
  readonly teamByToken: (token: string) => Promise<Team | undefined>;
  /**
   * All-or-nothing send of one request's messages (the transactional producer). It must not hold a record's `value`
   * once it has settled: the buffers go back to a pool for later requests (librdkafka copies them at `produce`).
   */
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

/**
 * Recording messages are built into pooled buffers, given back once their transaction has settled: a fresh buffer for
 * each was most of the memory capture took outside V8's heap, and V8 answers such memory with full collections (a
 * fifth of capture's CPU-seconds went to the collector). Small ones come from Node's own pool; the idle limit is the
 * messages of a few dozen requests.
 */
const POOLED_MESSAGE_MIN_BYTES = 16 * 1024;
const POOLED_MESSAGE_MAX_BYTES = 4 * 1024 * 1024;
const MESSAGE_POOL_IDLE_BYTES = 16 * 1024 * 1024;

export interface CaptureService extends RunningHttpService {
  readonly metrics: ReturnType<typeof createCaptureMetrics>;
}

/**
 * The capture HTTP service: `POST /s/` turns a posthog-js upload into recordings-topic messages and answers
 * `200 {"status":1}` only once all of them are committed to Kafka; `POST /api/v1/behaviors` and posthog-js's `/e/`
 * do the same for behaviours on `user_behaviors` (behavior-routes.ts). Every rejection is a catalogue error.
 */
export async function startCaptureService(options: CaptureOptions): Promise<CaptureService> {
  const registry = createMetricsRegistry('capture');
  const metrics = createCaptureMetrics(registry);
  const overflow = new OverflowRouter({
    ratePerSecond: options.sessionBytesPerSecond,
    burst: options.sessionBurstBytes,
    stickyMs: options.overflowStickyMs,
  });

  const budget = new InflightBudget(options.maxInflightBytes ?? 256 * 1024 * 1024, (used) =>
    metrics.inflightBytes.set(used),
  );

  const messageBuffers = new BufferPool({
    maxBufferBytes: POOLED_MESSAGE_MAX_BYTES,
    maxIdleBytes: MESSAGE_POOL_IDLE_BYTES,
  });
  const intake = new RequestIntake({
    producerReady: options.producerReady,
    admission: new TeamAdmission(options.teamByToken, options.teamRequestsPerSecond),
    budget,
    maxBodyBytes: options.maxBodyBytes,
    bodyLimits: options.bodyLimits,
  });
  const recordingRoute: IntakeRoute = {
    requirement: recordingEnabled,
    // Its records hold copies only: every message is built into a buffer of its own (`messageBuffers`).
    reusesBodyBuffer: true,
    onUpload: (upload) => {
      metrics.wireBytes.inc(upload.wireBytes);
      metrics.decodedBytes.inc(upload.json.length);
    },
  };

  /**
   * Takes one upload; resolves with what was dropped for breaking input bounds (the rest is committed). The order
   * of the checks (request-intake.ts) is the point (DESIGN §3.5.1): everything that can refuse a request cheaply runs
   * before its body is inflated and parsed. The team is the one of the token `parseSnapshotRequest` reads (as ever);
   * the token admitted while reading was the first one found, which for posthog-js is the same. Should they differ,
   * this one must pass as well (`teamOf`).
   */
  const handleRecording = (req: IncomingMessage, url: URL): Promise<DroppedEvents> =>
    intake.receive(req, url, recordingRoute, async (body) => {
      const request = parseSnapshotRequest(body.json);
      const team = await body.teamOf(request.token);
      const { eventCount, dropped } = request;
      const lent: PooledBuffer[] = [];
      const allocate = (bytes: number): Buffer => {
        const pooled = bytes >= POOLED_MESSAGE_MIN_BYTES ? messageBuffers.take(bytes) : undefined;
        if (pooled === undefined) return Buffer.allocUnsafe(bytes);
        lent.push(pooled);
        return pooled.bytes;
      };
      try {
        const records = recordsOf(team, request, body.wireDigest, allocate);
        // Nothing of the parsed request is held through the commit's wait (group commit): only its records.
        await commitRecords(options.send, metrics, records);
      } finally {
        for (const buffer of lent) buffer.give(); // `send` has settled: no one reads the values any more
      }
      metrics.events.inc(eventCount);
      return dropped;
    });

  /**
   * The request's messages. `requestId` is the body's digest, not a random id: a client that resends a request
   * capture committed but never answered (capture killed between the commit and the response) sends the same bytes,
   * and the blob consumer drops messages whose session, request, part and payload it already holds
   * (docs/recordings-message.md).
   */
  const recordsOf = (
    team: Team,
    request: SnapshotRequest,
    requestId: string,
    allocate: FrameAllocator,
  ): ProducedRecord[] => {
    const capturedAt = Date.now();
    const records: ProducedRecord[] = [];
    for (const session of request.sessions) {
      const events = team.consoleLogCaptureEnabled
        ? session.events
        : session.events.filter((e) => !isConsoleEvent(e.event));
      if (events.length === 0) continue;
      const messages = buildRecordingMessages(
        { ...session, events, team },
        { maxMessageBytes: options.maxMessageBytes, requestId, capturedAt, allocate },
      );
      const rawBytes = messages.reduce((sum, m) => sum + m.header.rawBytes, 0);
      const toOverflow = overflow.shouldOverflow(`${team.id}:${session.sessionId}`, rawBytes);
      if (toOverflow) metrics.overflowSessions.inc();
      const topic = toOverflow ? topicNames.recordingsOverflow : topicNames.recordings;
      for (const message of messages) {
        records.push({ topic, key: message.key, value: message.value, headers: message.headers });
      }
    }
    return records;
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
  addBehaviorRoutes(router, { intake, send: options.send, metrics });
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
  const native = nativeAddons();
  metrics.nativeAddon.set({ addon: 'json-skip' }, native.jsonSkip ? 1 : 0);
  metrics.nativeAddon.set({ addon: 'gzip-inflate' }, native.gzipInflate ? 1 : 0);
  if (!native.jsonSkip || !native.gzipInflate) {
    options.log.warn(
      'native addons not built (scripts/setup builds them): capture scans in JavaScript and inflates with node:zlib, slower',
      {
        ...native,
      },
    );
  }
  return { ...http, metrics };
}

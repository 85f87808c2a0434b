import type { IncomingMessage } from 'node:http';
import { type ErrorCode, ReplayError } from '../errors/index.ts';
import { sendJson } from '../http/respond.ts';
import type { Router } from '../http/router.ts';
import type { ProducedRecord } from '../kafka/transactional-producer.ts';
import {
  type BehaviorBatch,
  type BehaviorContext,
  type BehaviorItems,
  expectSomeAccepted,
} from '../uba/behavior-batch.ts';
import { behaviorMessage } from '../uba/behavior-message.ts';
import type { BehaviorRecord } from '../uba/behavior-record.ts';
import { behaviorsToRecords, readBehaviorsRequest } from '../uba/behaviors-request.ts';
import { posthogEventsToRecords, readPosthogEventsRequest } from '../uba/posthog-events.ts';
import type { CaptureMetrics } from './capture-metrics.ts';
import { commitRecords } from './commit-records.ts';
import type { IntakeRoute, RequestIntake } from './request-intake.ts';

export interface BehaviorRoutesOptions {
  readonly intake: RequestIntake;
  /** All-or-nothing send of one request's records (the transactional producer). */
  readonly send: (records: readonly ProducedRecord[]) => Promise<void>;
  readonly metrics: CaptureMetrics;
  readonly now?: () => number;
}

/** The posthog-js analytics routes (posthog-js uses `/e/`; `/i/v0/e/`, `/batch` and `/capture` are PostHog's others). */
export const POSTHOG_EVENT_PATHS = ['/e', '/i/v0/e', '/batch', '/capture'] as const;

/** How many refused events a posthog-js answer names one by one (as `/s/` does). */
const MAX_DROP_EXAMPLES = 20;

interface Source {
  readonly name: BehaviorRecord['source'];
  readonly route: IntakeRoute;
  readonly read: (json: Buffer) => BehaviorItems;
  readonly toRecords: (items: readonly unknown[], context: BehaviorContext) => BehaviorBatch;
}

const behaviorsApi: Source = {
  name: 'behaviors-api',
  // The token rides in the header, the query string, or each behaviour's own `token` (read by the exact scan too).
  route: { bearerToken: true, tokenScan: { itemTokens: true } },
  read: readBehaviorsRequest,
  toRecords: behaviorsToRecords,
};

const posthogJs: Source = {
  name: 'posthog-js',
  route: { bearerToken: true },
  read: readPosthogEventsRequest,
  toRecords: posthogEventsToRecords,
};

/**
 * `POST /api/v1/behaviors` and the posthog-js analytics routes (DESIGN §3.8): the body goes through capture's intake
 * (token, team rate, in-flight budget, decoding: request-intake.ts), each behaviour or event is checked against the
 * bounds and refused alone when it breaks one, and the accepted ones are committed to `user_behaviors` in one Kafka
 * transaction: a 200 means all of them are committed; a 503 means none was written.
 */
export function addBehaviorRoutes(router: Router, options: BehaviorRoutesOptions): void {
  const { metrics } = options;
  const now = options.now ?? Date.now;

  const countRejected = (source: Source, batch: BehaviorBatch) => {
    for (const rejection of batch.rejected)
      metrics.behaviorsRejected.inc({ source: source.name, code: rejection.code });
  };

  const take = async (source: Source, req: IncomingMessage, url: URL): Promise<BehaviorBatch> => {
    try {
      return await options.intake.receive(req, url, source.route, async (body) => {
        const request = source.read(body.json);
        const team = await body.teamOf(request.token);
        const batch = source.toRecords(request.items, { tenantId: team.id, capturedAt: now() });
        if (batch.records.length === 0) countRejected(source, batch);
        expectSomeAccepted(batch);
        await commitRecords(options.send, metrics, batch.records.map(behaviorMessage));
        if (batch.records.length > 0) countRejected(source, batch);
        metrics.behaviors.inc({ source: source.name }, batch.records.length);
        metrics.behaviorPropertiesOmitted.inc(batch.omittedProperties);
        return batch;
      });
    } catch (error) {
      if (error instanceof ReplayError) metrics.rejections.inc({ code: error.code });
      throw error;
    }
  };

  router.on('POST', '/api/v1/behaviors', async ({ req, res, url }) => {
    const batch = await take(behaviorsApi, req, url);
    sendJson(res, 200, { status: 1, accepted: batch.records.length, rejected: batch.rejected });
  });

  for (const path of POSTHOG_EVENT_PATHS) {
    router.on('POST', path, async ({ req, res, url }) => {
      const batch = await take(posthogJs, req, url);
      sendJson(res, 200, dropReport(batch));
    });
  }
}

/** The answer posthog-js gets: `{status: 1}`, plus what was refused in the shape `/s/` uses for its drops. */
export function dropReport(batch: BehaviorBatch): Record<string, unknown> {
  if (batch.rejected.length === 0) return { status: 1 };
  const byCode: Partial<Record<ErrorCode, number>> = {};
  for (const { code } of batch.rejected) byCode[code] = (byCode[code] ?? 0) + 1;
  return {
    status: 1,
    dropped: batch.rejected.length,
    dropped_by_code: byCode,
    dropped_events: batch.rejected.slice(0, MAX_DROP_EXAMPLES).map(({ index, code }) => ({ item: index, code })),
  };
}

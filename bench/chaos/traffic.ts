import { randomUUID } from 'node:crypto';
import { sampleRrwebEvents, snapshotBody } from '../../test/support/capture.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What became of one request to capture: answered 200, refused for good (a 4xx), or given up on after retries. */
export type Outcome = 'pending' | 'acked' | 'refused' | 'gave-up';

/** One `/s/` upload of a session. Its events are told apart by their timestamps (unique within the session). */
export interface Upload {
  readonly sessionId: string;
  readonly sentAt: number;
  /** Timestamps of the valid events: what capture must keep once it answers 200. */
  readonly good: readonly number[];
  /** Invalid events mixed in, which capture must drop alone (and say so in its answer). */
  readonly poison: number;
  outcome: Outcome;
  ackedAt?: number;
  /** How many events capture said it dropped. */
  dropped?: number;
  /** Attempts answered by nothing (connection lost, timed out): capture may have committed them all the same. */
  unanswered: number;
}

/** One `/api/v1/behaviors` request. */
export interface BehaviourBatch {
  readonly sent: number;
  /** Event ids of the valid behaviours capture accepted. */
  acked: string[];
  /** Valid behaviours refused, plus invalid ones accepted: both break the contract. */
  misjudged: number;
  outcome: Outcome;
  ackedAt?: number;
  unanswered: number;
}

/** Invalid rrweb events (each breaks one input bound of DESIGN §3.5.1), for mixing into good batches. */
export const poisonEvents = (t: number): Record<string, unknown>[] => [
  { type: 3, timestamp: 9e15, data: { source: 1 } },
  { type: 3, timestamp: -5, data: { source: 1 } },
  { type: 3, timestamp: String(t), data: { source: 1 } },
  { timestamp: t + 10 },
];

/** Invalid behaviours: an unknown action and a negative timestamp. */
const poisonBehaviours = (token: string, now: number) => [
  { token, user_id: 'poison', item_id: 'x', action_type: 'teleport', scenario_id: 'chaos', timestamp: now },
  { token, user_id: 'poison', item_id: 'x', action_type: 'click', scenario_id: 'chaos', timestamp: -1 },
];

const ACTIONS = ['impression', 'view', 'click', 'add_cart'];

/**
 * Posts to capture as clients do: until it answers, retrying what may pass later (no answer, 408, 429, 5xx) with a
 * jittered backoff, up to `giveUpAt`. Every attempt is bounded.
 */
async function deliver(
  url: string,
  body: string,
  giveUpAt: number,
  rand: () => number,
): Promise<{ status: number; answer: Record<string, unknown>; unanswered: number }> {
  let unanswered = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await fetch(url, {
        method: 'POST',
        body,
        headers: { 'content-type': 'text/plain' },
        signal: AbortSignal.timeout(15_000),
      });
      const answer = (await response.json().catch(() => ({}))) as Record<string, unknown>;
      const retriable = response.status === 408 || response.status === 429 || response.status >= 500;
      if (!retriable) return { status: response.status, answer, unanswered };
    } catch (error) {
      // A refused connection never reached capture; anything else may have been committed before it broke.
      if ((error as { cause?: { code?: string } }).cause?.code !== 'ECONNREFUSED') unanswered++;
    }
    const backoff = Math.min(1000, 100 * 2 ** attempt) * (0.5 + rand());
    if (Date.now() + backoff > giveUpAt) return { status: 0, answer: {}, unanswered };
    await sleep(backoff);
  }
}

export interface TrafficOptions {
  readonly captureUrl: string;
  readonly token: string;
  readonly rand: () => number;
  /** Visitors recording at once; each records sessions one after another. */
  readonly users: number;
  /** Mean pause between a visitor's uploads (uniform in [0.5, 1.5] × this). */
  readonly gapMs: number;
  /** A request not answered 200 this long after it was first sent is given up on. */
  readonly giveUpMs: number;
}

/**
 * Visitors recording sessions through capture while a scenario runs: each posts a session's `/s/` batches one after
 * another (the next once the last was answered 200, as posthog-js does), each followed by a few behaviours. Every
 * request and what became of it is kept for the audit.
 */
export class Traffic {
  readonly uploads: Upload[] = [];
  readonly behaviours: BehaviourBatch[] = [];
  private readonly options: TrafficOptions;
  private running = false;
  private visitors: Promise<void>[] = [];
  private readonly requests: Promise<unknown>[] = [];

  constructor(options: TrafficOptions) {
    this.options = options;
  }

  start(): void {
    this.running = true;
    this.visitors = Array.from({ length: this.options.users }, () => this.visitor());
  }

  /** Stops starting requests; resolves once every request sent is answered or given up on. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all([...this.visitors, ...this.requests]);
  }

  /**
   * One upload of `events` plus `poison` invalid events (and `extra` properties) to `sessionId`, retried until
   * answered.
   */
  upload(
    sessionId: string,
    events: Record<string, unknown>[],
    poison: Record<string, unknown>[] = [],
    extra: Record<string, unknown> = {},
  ): Promise<Upload> {
    const upload: Upload = {
      sessionId,
      sentAt: Date.now(),
      good: events.map((e) => e.timestamp as number),
      poison: poison.length,
      outcome: 'pending',
      unanswered: 0,
    };
    this.uploads.push(upload);
    const body = JSON.stringify(snapshotBody(this.options.token, sessionId, [...events, ...poison], extra));
    return this.track(
      deliver(`${this.options.captureUrl}/s/`, body, upload.sentAt + this.options.giveUpMs, this.options.rand).then(
        ({ status, answer, unanswered }) => {
          upload.unanswered = unanswered;
          upload.outcome = outcomeOf(status);
          if (status === 200) {
            upload.ackedAt = Date.now();
            upload.dropped = Number(answer.dropped ?? 0);
          }
          return upload;
        },
      ),
    );
  }

  /** `count` valid behaviours of `sessionId` (plus the invalid ones when `poison`), retried until answered. */
  behave(sessionId: string, count: number, poison = false): Promise<BehaviourBatch> {
    const now = Date.now();
    const { token, rand } = this.options;
    const good = Array.from({ length: count }, () => ({
      token,
      event_id: randomUUID(),
      user_id: `visitor-${Math.floor(rand() * 50)}`,
      item_id: `item-${Math.floor(rand() * 200)}`,
      action_type: ACTIONS[Math.floor(rand() * ACTIONS.length)],
      scenario_id: 'chaos',
      session_id: sessionId,
      timestamp: now,
    }));
    const items = poison ? [...good, ...poisonBehaviours(token, now)] : good;
    const batch: BehaviourBatch = { sent: items.length, acked: [], misjudged: 0, outcome: 'pending', unanswered: 0 };
    this.behaviours.push(batch);
    return this.track(
      deliver(
        `${this.options.captureUrl}/api/v1/behaviors`,
        JSON.stringify(items),
        now + this.options.giveUpMs,
        rand,
      ).then(({ status, answer, unanswered }) => {
        batch.unanswered = unanswered;
        batch.outcome = outcomeOf(status);
        if (status === 200) {
          batch.ackedAt = Date.now();
          const refused = new Set(((answer.rejected ?? []) as { index: number }[]).map((r) => r.index));
          batch.acked = good.filter((_, i) => !refused.has(i)).map((b) => b.event_id);
          const refusedPoison = [...refused].filter((i) => i >= good.length).length;
          batch.misjudged = good.length - batch.acked.length + (items.length - good.length - refusedPoison);
        }
        return batch;
      }),
    );
  }

  /** Keeps every request, the visitors' and the poison's, in what `stop` waits for. */
  private track<T>(request: Promise<T>): Promise<T> {
    this.requests.push(request);
    return request;
  }

  private async visitor(): Promise<void> {
    const { rand, gapMs } = this.options;
    while (this.running) {
      const sessionId = randomUUID();
      const uploads = 3 + Math.floor(rand() * 8);
      // An hour ago: well inside the team's retention (past it, the API answers 410).
      const start = Date.now() - 3_600_000;
      for (let k = 0; k < uploads && this.running; k++) {
        const upload = await this.upload(sessionId, sampleRrwebEvents(start + k * 2000));
        if (upload.outcome !== 'acked') break;
        await this.behave(sessionId, 3);
        await sleep(gapMs * (0.5 + rand()));
      }
    }
  }
}

const outcomeOf = (status: number): Outcome => (status === 200 ? 'acked' : status === 0 ? 'gave-up' : 'refused');

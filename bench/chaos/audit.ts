import type { BehaviourCounter, BehaviourCounts } from './behaviour-counts.ts';
import type { ReplayReader, StoredSession } from './replay-reader.ts';
import type { Traffic } from './traffic.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Replay events, counted once the pipeline has recovered. Events are told apart by timestamp within a session. */
export interface ReplayFigures {
  /** Events posted to capture, valid and invalid, acknowledged or not. */
  sent: number;
  /** Valid events of uploads capture answered 200. */
  acknowledged: number;
  /** Acknowledged events the player gets back through the replay API. */
  replayable: number;
  /** Acknowledged events the player does not get. */
  lost: number;
  /**
   * Event copies beyond the first: the session's `event_count` (every summary row, duplicates included) or its
   * stored events (every distinct block, read raw), whichever is larger, over the distinct events stored. A session
   * with an undecodable block is judged by its readable blocks alone (the counter also counts the unreadable ones).
   */
  duplicated: number;
  /** Summary rows stored twice for one block. */
  duplicateBlocks: number;
  /** Blocks listed but unreadable. */
  missingBlocks: number;
  /** Distinct events stored that capture never acknowledged (given up on by the client after a lost answer). */
  storedUnacknowledged: number;
  /** Attempts that got no answer: a capture that committed and died before answering makes the client send twice. */
  unansweredAttempts: number;
  /** Uploads capture judged wrongly: valid events refused, or invalid ones not dropped. */
  misjudged: number;
  /** Sessions the API did not answer for (their acknowledged events count as lost). */
  unreadableSessions: number;
}

/** Behaviours, through ClickHouse (the behaviour sink, its roll-up) and Redis (the realtime sink). */
export interface BehaviourFigures {
  sent: number;
  acknowledged: number;
  /** Acknowledged behaviours with a row in user_behaviors. */
  stored: number;
  lost: number;
  /** Rows beyond the first per event id. */
  duplicated: number;
  /** Behaviours the hourly roll-up counts beyond the distinct ones stored. */
  rollupDuplicated: number;
  realtimeCounted: number;
  /** Acknowledged behaviours the realtime counts miss. */
  realtimeLost: number;
  /** Realtime counts beyond every behaviour that reached the topic (acknowledged or stored). */
  realtimeDuplicated: number;
  storedUnacknowledged: number;
  unansweredAttempts: number;
  misjudged: number;
  /** The counts could not be read (then nothing counts as stored). */
  unreadable: boolean;
}

/** Retries a read while it fails (the API or the read side may still be restarting), for at most `timeoutMs`. */
async function answered<T>(read: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await read();
    } catch (error) {
      if (Date.now() > deadline) throw error;
    }
    await sleep(500);
  }
}

const NOT_STORED: StoredSession = {
  counted: 0,
  duplicateBlocks: 0,
  stored: [],
  played: [],
  missingBlocks: 0,
  corruptBlocks: 0,
};

/** Every session the traffic recorded, read back through the replay API, against what capture acknowledged. */
export async function auditReplays(reader: ReplayReader, traffic: Traffic): Promise<ReplayFigures> {
  const figures: ReplayFigures = {
    sent: 0,
    acknowledged: 0,
    replayable: 0,
    lost: 0,
    duplicated: 0,
    duplicateBlocks: 0,
    missingBlocks: 0,
    storedUnacknowledged: 0,
    unansweredAttempts: 0,
    misjudged: 0,
    unreadableSessions: 0,
  };
  const acknowledged = new Map<string, Set<number>>();
  for (const upload of traffic.uploads) {
    figures.sent += upload.good.length + upload.poison;
    figures.unansweredAttempts += upload.unanswered;
    const mine = acknowledged.get(upload.sessionId) ?? new Set<number>();
    acknowledged.set(upload.sessionId, mine);
    if (upload.outcome === 'acked') {
      for (const t of upload.good) mine.add(t);
      if (upload.dropped !== upload.poison) figures.misjudged++;
    } else if (upload.outcome === 'refused' && upload.good.length > 0) figures.misjudged++;
  }
  for (const [sessionId, acked] of acknowledged) {
    figures.acknowledged += acked.size;
    let session: StoredSession;
    try {
      session = (await answered(() => reader.session(sessionId))) ?? NOT_STORED;
    } catch {
      figures.unreadableSessions++;
      session = NOT_STORED;
    }
    const played = new Set(session.played);
    const stored = new Set(session.stored);
    for (const t of acked) {
      if (played.has(t)) figures.replayable++;
      else figures.lost++;
    }
    const countedCopies = session.corruptBlocks === 0 ? session.counted - stored.size : 0;
    figures.duplicated += Math.max(0, countedCopies, session.stored.length - stored.size);
    figures.duplicateBlocks += session.duplicateBlocks;
    figures.missingBlocks += session.missingBlocks;
    figures.storedUnacknowledged += [...stored].filter((t) => !acked.has(t)).length;
  }
  return figures;
}

/** The traffic's behaviours against what ClickHouse and Redis hold for the tenant. */
export async function auditBehaviours(
  counter: BehaviourCounter,
  tenant: number,
  traffic: Traffic,
): Promise<BehaviourFigures> {
  const counts: BehaviourCounts | undefined = await answered(() => counter.counts(tenant)).catch(() => undefined);
  const { copies, rollup, realtime } = counts ?? { copies: {}, rollup: 0, realtime: 0 };
  const acked = new Set(traffic.behaviours.flatMap((b) => b.acked));
  const storedIds = Object.keys(copies);
  const stored = [...acked].filter((id) => copies[id] !== undefined).length;
  const reachedTopic = new Set([...acked, ...storedIds]).size;
  return {
    sent: traffic.behaviours.reduce((n, b) => n + b.sent, 0),
    acknowledged: acked.size,
    stored,
    lost: acked.size - stored,
    duplicated: Object.values(copies).reduce((n, rows) => n + rows - 1, 0),
    rollupDuplicated: Math.max(0, rollup - storedIds.length),
    realtimeCounted: realtime,
    realtimeLost: Math.max(0, acked.size - realtime),
    realtimeDuplicated: Math.max(0, realtime - reachedTopic),
    storedUnacknowledged: storedIds.filter((id) => !acked.has(id)).length,
    unansweredAttempts: traffic.behaviours.reduce((n, b) => n + b.unanswered, 0),
    misjudged: traffic.behaviours.reduce((n, b) => n + b.misjudged, 0),
    unreadable: counts === undefined,
  };
}

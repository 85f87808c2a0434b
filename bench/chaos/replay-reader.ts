import { decodeBlockEvents } from '../../src/api/session-events.ts';
import { isReplayError } from '../../src/errors/index.ts';

/** A session as the replay API stores it: its counters, and every copy of every event its blocks hold. */
export interface StoredSession {
  /** `event_count` of the merged summary rows: a row stored twice counts its events twice. */
  readonly counted: number;
  /** Summary rows stored more than once for one block. */
  readonly duplicateBlocks: number;
  /** Timestamps of the events in all of the session's readable blocks, read raw (no de-duplication). */
  readonly stored: readonly number[];
  /** Timestamps of the events the player gets (`snapshots?blocks=0-n`, which plays each event once). */
  readonly played: readonly number[];
  /** Blocks the API could not read (`missing_block` lines). */
  readonly missingBlocks: number;
  /** Blocks whose raw bytes do not decode: their events are counted in `counted` but absent from `stored`. */
  readonly corruptBlocks: number;
}

/** One team's sessions read back through the replay API with an API key, every request bounded. */
export class ReplayReader {
  private readonly apiUrl: string;
  private readonly recordings: string;
  private readonly headers: Record<string, string>;

  constructor(apiUrl: string, teamId: number, key: string) {
    this.apiUrl = apiUrl;
    this.recordings = `/api/projects/${teamId}/session_recordings`;
    this.headers = { authorization: `Bearer ${key}` };
  }

  /** Each listed session's `event_count`, or undefined while the API (or ClickHouse behind it) does not answer. */
  async counts(): Promise<Map<string, number> | undefined> {
    const response = await this.get(`${this.recordings}?limit=500`);
    if (!response?.ok) return undefined;
    const listing = (await response.json().catch(() => undefined)) as
      | { results: { id: string; event_count: number }[] }
      | undefined;
    return listing && new Map(listing.results.map((s) => [s.id, s.event_count]));
  }

  /** The session as stored; undefined when the API knows no such session. Throws when the API fails. */
  async session(sessionId: string): Promise<StoredSession | undefined> {
    const summaryResponse = await this.get(`${this.recordings}/${sessionId}`);
    if (summaryResponse?.status === 404) return undefined;
    const summary = (await this.expectOk(summaryResponse, 'summary').json()) as Record<string, number>;
    const list = (await this.expectOk(
      await this.get(`${this.recordings}/${sessionId}/snapshots`),
      'block list',
    ).json()) as {
      blocks: { index: number; raw_url: string }[];
    };
    const stored: number[] = [];
    let corruptBlocks = 0;
    for (const block of list.blocks) {
      const raw = this.expectOk(await this.get(block.raw_url), 'block');
      const bytes = Buffer.from(await raw.arrayBuffer());
      try {
        for (const line of decodeBlockEvents(bytes, block.index)) stored.push(line.timestamp);
      } catch (error) {
        // Its events are unreadable for the player too: the events stream shows it as a missing block.
        if (!isReplayError(error, 'block_corrupt')) throw error;
        corruptBlocks++;
      }
    }
    const played: number[] = [];
    let missingBlocks = 0;
    if (list.blocks.length > 0) {
      const text = await this.expectOk(
        await this.get(`${this.recordings}/${sessionId}/snapshots?blocks=0-${list.blocks.length - 1}`),
        'events',
      ).text();
      for (const line of text.split('\n').filter(Boolean)) {
        if (line.startsWith('{"missing_block"')) missingBlocks++;
        else played.push((JSON.parse(line) as [string, { timestamp: number }])[1].timestamp);
      }
    }
    return {
      counted: summary.event_count!,
      duplicateBlocks: summary.duplicate_blocks!,
      stored,
      played,
      missingBlocks,
      corruptBlocks,
    };
  }

  private expectOk(response: Response | undefined, what: string): Response {
    if (!response?.ok)
      throw new Error(`the replay API did not answer the ${what} (${response?.status ?? 'no answer'})`);
    return response;
  }

  /** GET of an API path; undefined when nothing answers in time. */
  private async get(path: string): Promise<Response | undefined> {
    return fetch(`${this.apiUrl}${path}`, { headers: this.headers, signal: AbortSignal.timeout(10_000) }).catch(
      () => undefined,
    );
  }
}

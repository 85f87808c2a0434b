import { type ActiveInterval, intervalsOf, mergeIntervals } from './activity.ts';
import {
  CONSOLE_PLUGIN,
  consoleLevelClass,
  EventType,
  field,
  IncrementalSource,
  isActiveSource,
  isClickInteraction,
  isMouseActivitySource,
} from './event-kinds.ts';
import type { RrwebEvent } from './rrweb.ts';

/** Caps that keep one summary small whatever the page does. */
export const MAX_URLS_PER_SUMMARY = 25;
export const MAX_URL_LENGTH = 2048;

/**
 * What one batch of events contributes to a session's summary row (DESIGN §3.4). Counters add up, timestamps take
 * min/max, URLs and activity intervals merge: so summaries of consecutive messages combine into the block's and the
 * session's.
 */
export interface EventsSummary {
  firstTimestamp: number;
  lastTimestamp: number;
  eventCount: number;
  clickCount: number;
  keypressCount: number;
  mouseActivityCount: number;
  consoleLogCount: number;
  consoleWarnCount: number;
  consoleErrorCount: number;
  /** The URL of the earliest Meta/Custom event carrying one, with that event's timestamp. */
  firstUrl: string | null;
  firstUrlTimestamp: number | null;
  /** Distinct URLs in order of appearance, capped at `MAX_URLS_PER_SUMMARY`. */
  urls: string[];
  activeIntervals: ActiveInterval[];
}

function urlOf(event: RrwebEvent): string | undefined {
  const href =
    event.type === EventType.Meta
      ? field(event.data, 'href')
      : event.type === EventType.Custom
        ? field(field(event.data, 'payload'), 'href')
        : undefined;
  return typeof href === 'string' && href.length > 0 ? href.slice(0, MAX_URL_LENGTH) : undefined;
}

/**
 * Accumulates the summary of events added one by one. Reads only `type`, `timestamp`, `data.source`, `data.type`,
 * `data.href`, `data.plugin`, `data.payload.level` and `data.payload.href`: fields posthog-js never compresses.
 */
export class SummaryBuilder {
  private readonly summary: EventsSummary = {
    firstTimestamp: Number.POSITIVE_INFINITY,
    lastTimestamp: Number.NEGATIVE_INFINITY,
    eventCount: 0,
    clickCount: 0,
    keypressCount: 0,
    mouseActivityCount: 0,
    consoleLogCount: 0,
    consoleWarnCount: 0,
    consoleErrorCount: 0,
    firstUrl: null,
    firstUrlTimestamp: null,
    urls: [],
    activeIntervals: [],
  };
  private readonly activeTimestamps: number[] = [];

  add(event: RrwebEvent): void {
    const s = this.summary;
    const ts = event.timestamp;
    s.eventCount++;
    if (ts < s.firstTimestamp) s.firstTimestamp = ts;
    if (ts > s.lastTimestamp) s.lastTimestamp = ts;

    if (event.type === EventType.IncrementalSnapshot) {
      const source = field(event.data, 'source');
      if (typeof source !== 'number') return;
      if (isActiveSource(source)) this.activeTimestamps.push(ts);
      if (isMouseActivitySource(source)) s.mouseActivityCount++;
      if (source === IncrementalSource.Input) s.keypressCount++;
      if (source === IncrementalSource.MouseInteraction) {
        const interaction = field(event.data, 'type');
        if (typeof interaction === 'number' && isClickInteraction(interaction)) s.clickCount++;
      }
      return;
    }
    if (event.type === EventType.Plugin) {
      if (field(event.data, 'plugin') !== CONSOLE_PLUGIN) return;
      const level = consoleLevelClass(field(field(event.data, 'payload'), 'level'));
      if (level === 'warn') s.consoleWarnCount++;
      else if (level === 'error') s.consoleErrorCount++;
      else s.consoleLogCount++;
      return;
    }
    const url = urlOf(event);
    if (url === undefined) return;
    if (s.firstUrlTimestamp === null || ts < s.firstUrlTimestamp) {
      s.firstUrl = url;
      s.firstUrlTimestamp = ts;
    }
    if (s.urls.length < MAX_URLS_PER_SUMMARY && !s.urls.includes(url)) s.urls.push(url);
  }

  /** The summary so far; call once, after the last `add`. Requires at least one event. */
  finish(): EventsSummary {
    this.summary.activeIntervals = intervalsOf(this.activeTimestamps);
    return this.summary;
  }
}

export function isConsoleEvent(event: RrwebEvent): boolean {
  return event.type === EventType.Plugin && field(event.data, 'plugin') === CONSOLE_PLUGIN;
}

/** Adds `part` (a later message's summary) into `into`, as if their events had been summarised together. */
export function mergeSummary(into: EventsSummary, part: EventsSummary): void {
  into.firstTimestamp = Math.min(into.firstTimestamp, part.firstTimestamp);
  into.lastTimestamp = Math.max(into.lastTimestamp, part.lastTimestamp);
  into.eventCount += part.eventCount;
  into.clickCount += part.clickCount;
  into.keypressCount += part.keypressCount;
  into.mouseActivityCount += part.mouseActivityCount;
  into.consoleLogCount += part.consoleLogCount;
  into.consoleWarnCount += part.consoleWarnCount;
  into.consoleErrorCount += part.consoleErrorCount;
  if (part.firstUrl !== null && (into.firstUrlTimestamp === null || part.firstUrlTimestamp! < into.firstUrlTimestamp)) {
    into.firstUrl = part.firstUrl;
    into.firstUrlTimestamp = part.firstUrlTimestamp;
  }
  for (const url of part.urls) {
    if (into.urls.length >= MAX_URLS_PER_SUMMARY) break;
    if (!into.urls.includes(url)) into.urls.push(url);
  }
  into.activeIntervals =
    part.activeIntervals.length === 0
      ? into.activeIntervals
      : mergeIntervals([...into.activeIntervals, ...part.activeIntervals]);
}

import { type ActiveInterval, intervalsOf } from '../../recordings/activity.ts';
import {
  CONSOLE_PLUGIN,
  consoleLevelClass,
  EventType,
  IncrementalSource,
  isActiveSource,
  isClickInteraction,
} from '../../recordings/event-kinds.ts';

/**
 * One session's events, every window of it, as the player shows them: one stream that rrweb-player plays (switching
 * to the window the user was in), the console entries and the event list beside it, and the activity the scrubber
 * marks. Pure: the player page loads this file in the browser (browser-modules.ts), and the unit tests run it in Node.
 */

export interface TimelineEvent {
  readonly type: number;
  readonly timestamp: number;
  readonly data?: unknown;
}

/** A stretch of time during which one window is shown: [start, end), the last one up to and including `end`. */
export interface WindowSegment {
  readonly windowId: string;
  readonly start: number;
  readonly end: number;
}

export interface ConsoleEntry {
  readonly timestamp: number;
  readonly windowId: string;
  /** The level as recorded (log, info, warn, error, assert, ...). */
  readonly level: string;
  /** What the summary counts it as. */
  readonly kind: 'log' | 'warn' | 'error';
  readonly text: string;
  /** The stack frames rrweb's console plugin recorded (may be empty). */
  readonly trace: readonly string[];
}

export interface ListedEvent {
  readonly timestamp: number;
  readonly windowId: string;
  readonly kind: 'click' | 'input' | 'navigation' | 'custom' | 'analytics';
  readonly label: string;
}

export interface SessionTimeline {
  /** The first moment anything can be shown (the earliest full snapshot); offsets in the player count from here. */
  readonly start: number;
  readonly end: number;
  /** Window ids in the order their first full snapshot arrived. */
  readonly windows: readonly string[];
  readonly segments: readonly WindowSegment[];
  /** What rrweb-player plays. */
  readonly events: readonly TimelineEvent[];
  /** Active stretches by the summary's rule (recordings/activity.ts), over every window's input. */
  readonly active: readonly ActiveInterval[];
  readonly console: readonly ConsoleEntry[];
  readonly listed: readonly ListedEvent[];
}

/** Longest console text and trace kept per entry: a page can log megabytes. */
const MAX_CONSOLE_TEXT = 2000;
const MAX_TRACE_FRAMES = 20;
const MAX_LABEL_TEXT = 40;

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

function sourceOf(event: TimelineEvent): number | undefined {
  if (event.type !== EventType.IncrementalSnapshot) return undefined;
  const source = field(event.data, 'source');
  return typeof source === 'number' ? source : undefined;
}

function isActive(event: TimelineEvent): boolean {
  const source = sourceOf(event);
  return source !== undefined && isActiveSource(source);
}

/** Events sorted by time; equal times keep their recorded order (Array.prototype.sort is stable). */
function byTime<T extends { readonly timestamp: number }>(events: readonly T[]): T[] {
  return [...events].sort((a, b) => a.timestamp - b.timestamp);
}

/**
 * Which window is shown when. The first is the window of the earliest full snapshot; after that the player follows
 * the user: an active event (input, mouse, scroll, ...) in another window switches to that window, provided it has a
 * full snapshot by then (a window cannot be drawn before one). Inactive stretches stay on the last window used.
 */
export function windowSegments(byWindow: Readonly<Record<string, readonly TimelineEvent[]>>): WindowSegment[] {
  const firstFull = new Map<string, number>();
  let end = Number.NEGATIVE_INFINITY;
  const activity: { timestamp: number; windowId: string }[] = [];
  for (const [windowId, events] of Object.entries(byWindow)) {
    for (const event of events) {
      end = Math.max(end, event.timestamp);
      const known = firstFull.get(windowId);
      if (event.type === EventType.FullSnapshot && (known === undefined || event.timestamp < known)) {
        firstFull.set(windowId, event.timestamp);
      }
      if (isActive(event)) activity.push({ timestamp: event.timestamp, windowId });
    }
  }
  if (firstFull.size === 0) return [];
  const [firstWindow, start] = [...firstFull].reduce((a, b) => (b[1] < a[1] ? b : a));
  const segments: { windowId: string; start: number; end: number }[] = [{ windowId: firstWindow, start, end }];
  for (const { timestamp, windowId } of byTime(activity)) {
    const current = segments[segments.length - 1]!;
    if (windowId === current.windowId || timestamp <= current.start) continue;
    const drawable = firstFull.get(windowId);
    if (drawable === undefined || drawable > timestamp) continue;
    current.end = timestamp;
    segments.push({ windowId, start: timestamp, end });
  }
  return segments;
}

/**
 * The one stream rrweb-player plays. Each segment starts with its window drawn as it was at that moment: the window's
 * last Meta and full snapshot before the segment, then every event of it since that snapshot, all moved to the
 * segment's start (rrweb applies same-time events in order, and a seek replays from the nearest full snapshot, so
 * this holds whichever way the playhead moves). The segment's own events follow at their times.
 */
export function mergedStream(
  byWindow: Readonly<Record<string, readonly TimelineEvent[]>>,
  segments: readonly WindowSegment[],
): TimelineEvent[] {
  const sorted = new Map(Object.entries(byWindow).map(([id, events]) => [id, byTime(events)]));
  const stream: TimelineEvent[] = [];
  segments.forEach((segment, i) => {
    const events = sorted.get(segment.windowId) ?? [];
    const last = i === segments.length - 1;
    let full = -1;
    for (let j = 0; j < events.length && events[j]!.timestamp <= segment.start; j++) {
      if (events[j]!.type === EventType.FullSnapshot) full = j;
    }
    if (full < 0) return; // windowSegments never makes such a segment
    let meta = -1;
    for (let j = full - 1; j >= 0 && meta < 0; j--) if (events[j]!.type === EventType.Meta) meta = j;
    const at = (event: TimelineEvent) => ({ ...event, timestamp: segment.start });
    if (meta >= 0) stream.push(at(events[meta]!));
    let j = full;
    for (; j < events.length && events[j]!.timestamp < segment.start; j++) stream.push(at(events[j]!));
    for (; j < events.length; j++) {
      const t = events[j]!.timestamp;
      if (last ? t > segment.end : t >= segment.end) break;
      stream.push(events[j]!);
    }
  });
  return stream;
}

/** A console argument as rrweb's console plugin stringified it: JSON strings lose their quotes, the rest stays. */
function consoleArgument(value: unknown): string {
  if (typeof value !== 'string') return String(value);
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    try {
      const parsed: unknown = JSON.parse(value);
      if (typeof parsed === 'string') return parsed;
    } catch {
      // not JSON after all: shown as recorded
    }
  }
  return value;
}

function consoleEntry(event: TimelineEvent, windowId: string): ConsoleEntry | undefined {
  if (event.type !== EventType.Plugin || field(event.data, 'plugin') !== CONSOLE_PLUGIN) return undefined;
  const payload = field(event.data, 'payload');
  const level = field(payload, 'level');
  const args = field(payload, 'payload');
  const trace = field(payload, 'trace');
  return {
    timestamp: event.timestamp,
    windowId,
    level: typeof level === 'string' ? level : 'log',
    kind: consoleLevelClass(level),
    text: (Array.isArray(args) ? args.map(consoleArgument).join(' ') : '').slice(0, MAX_CONSOLE_TEXT),
    trace: Array.isArray(trace) ? trace.slice(0, MAX_TRACE_FRAMES).map(String) : [],
  };
}

/** What a recorded node looks like in a list: `button#buy "Add to cart"`, from its tag, id or class, and text. */
class NodeLabels {
  private readonly labels = new Map<number, { element: string; text: string }>();

  /** Takes every element and text node of a serialized (rrweb-snapshot) node tree; `parent` is its parent's id. */
  add(node: unknown, parent?: number): void {
    const id = field(node, 'id');
    const type = field(node, 'type');
    if (type === 2 && typeof id === 'number') {
      const attributes = field(node, 'attributes');
      const domId = field(attributes, 'id');
      const className = field(attributes, 'class');
      const tag = String(field(node, 'tagName') ?? 'element').toLowerCase();
      const element =
        typeof domId === 'string' && domId
          ? `${tag}#${domId}`
          : typeof className === 'string' && className.trim()
            ? `${tag}.${className.trim().split(/\s+/)[0]}`
            : tag;
      this.labels.set(id, { element, text: '' });
    } else if (type === 3 && parent !== undefined) {
      const owner = this.labels.get(parent);
      const text = String(field(node, 'textContent') ?? '').trim();
      if (owner && !owner.text && text) owner.text = text.slice(0, MAX_LABEL_TEXT);
    }
    const children = field(node, 'childNodes');
    if (Array.isArray(children)) for (const child of children) this.add(child, typeof id === 'number' ? id : parent);
  }

  of(id: unknown): string {
    const label = typeof id === 'number' ? this.labels.get(id) : undefined;
    if (!label) return 'an element';
    return label.text ? `${label.element} "${label.text}"` : label.element;
  }
}

/**
 * One window's clicks, inputs (a burst in one field is one entry), page loads and URL changes, and the page's own
 * custom events.
 */
function listWindow(events: readonly TimelineEvent[], windowId: string): ListedEvent[] {
  const listed: ListedEvent[] = [];
  const nodes = new NodeLabels();
  let lastHref: string | undefined;
  let lastInput: number | undefined;
  const push = (event: TimelineEvent, kind: ListedEvent['kind'], label: string) => {
    listed.push({ timestamp: event.timestamp, windowId, kind, label });
    lastInput = undefined;
  };
  const navigation = (event: TimelineEvent, href: unknown) => {
    if (typeof href !== 'string' || !href || href === lastHref) return;
    lastHref = href;
    push(event, 'navigation', href);
  };
  for (const event of events) {
    if (event.type === EventType.FullSnapshot) nodes.add(field(event.data, 'node'));
    else if (event.type === EventType.Meta) navigation(event, field(event.data, 'href'));
    else if (event.type === EventType.Custom) {
      const href = field(field(event.data, 'payload'), 'href');
      const tag = String(field(event.data, 'tag') ?? 'custom event');
      if (typeof href === 'string') navigation(event, href);
      // posthog-js marks its own bookkeeping ($session_options, $remote_config_received, ...) with a '$'.
      else if (!tag.startsWith('$')) push(event, 'custom', tag);
    }
    const source = sourceOf(event);
    if (source === IncrementalSource.Mutation) {
      const adds = field(event.data, 'adds');
      if (Array.isArray(adds)) for (const add of adds) nodes.add(field(add, 'node'), field(add, 'parentId') as number);
    } else if (source === IncrementalSource.MouseInteraction) {
      const interaction = field(event.data, 'type');
      if (typeof interaction === 'number' && isClickInteraction(interaction)) {
        push(event, 'click', `Click on ${nodes.of(field(event.data, 'id'))}`);
      }
    } else if (source === IncrementalSource.Input) {
      const target = field(event.data, 'id');
      if (typeof target === 'number' && target === lastInput) continue;
      push(event, 'input', `Input in ${nodes.of(target)}`);
      lastInput = typeof target === 'number' ? target : undefined;
    }
  }
  return listed;
}

/** A posthog-js analytics event (or behaviour) of the session, as the replay API's `/events` route returns it. */
export interface SessionAnalyticsEvent {
  readonly timestamp: string;
  readonly action_type: string;
  readonly item_id?: string;
  readonly current_url?: string;
}

/**
 * Analytics events as list entries. They carry no window id: each goes to the window that was on their page
 * (`current_url`, the window's last page load or URL change before it), else to the window shown at their time.
 */
export function analyticsEntries(rows: readonly SessionAnalyticsEvent[], timeline: SessionTimeline): ListedEvent[] {
  const navigations = timeline.listed.filter((entry) => entry.kind === 'navigation');
  const pageOf = (windowId: string, timestamp: number) =>
    navigations.findLast((entry) => entry.windowId === windowId && entry.timestamp <= timestamp)?.label;
  return rows
    .map((row) => {
      const timestamp = Date.parse(row.timestamp);
      const onPage = timeline.windows.find(
        (windowId) => row.current_url && pageOf(windowId, timestamp) === row.current_url,
      );
      const windowId = onPage ?? windowAt(timeline.segments, timestamp) ?? '';
      const label = row.item_id ? `${row.action_type} ${row.item_id}` : row.action_type;
      return { timestamp, windowId, kind: 'analytics' as const, label };
    })
    .filter((entry) => Number.isFinite(entry.timestamp));
}

/** Entries of two time-ordered lists, in time order (ties: `a` first). */
export function mergeByTime<T extends { readonly timestamp: number }>(a: readonly T[], b: readonly T[]): T[] {
  return [...a, ...b].sort((x, y) => x.timestamp - y.timestamp);
}

/** The window shown at `timestamp`. */
export function windowAt(segments: readonly WindowSegment[], timestamp: number): string | undefined {
  let found = segments[0]?.windowId;
  for (const segment of segments) if (segment.start <= timestamp) found = segment.windowId;
  return found;
}

/** Everything the player needs from a session's events, grouped by window id as the API streams them. */
export function sessionTimeline(byWindow: Readonly<Record<string, readonly TimelineEvent[]>>): SessionTimeline {
  const segments = windowSegments(byWindow);
  const windows = [...new Set(segments.map((s) => s.windowId))];
  for (const id of Object.keys(byWindow)) {
    if (!windows.includes(id) && byWindow[id]!.some((e) => e.type === EventType.FullSnapshot)) windows.push(id);
  }
  const consoleEntries: ConsoleEntry[] = [];
  let listed: ListedEvent[] = [];
  const activeTimes: number[] = [];
  for (const [windowId, unsorted] of Object.entries(byWindow)) {
    const events = byTime(unsorted);
    for (const event of events) {
      const entry = consoleEntry(event, windowId);
      if (entry) consoleEntries.push(entry);
      if (isActive(event)) activeTimes.push(event.timestamp);
    }
    listed = mergeByTime(listed, listWindow(events, windowId));
  }
  return {
    start: segments[0]?.start ?? 0,
    end: segments[segments.length - 1]?.end ?? 0,
    windows,
    segments,
    events: mergedStream(byWindow, segments),
    active: intervalsOf(activeTimes),
    console: consoleEntries.sort((a, b) => a.timestamp - b.timestamp),
    listed,
  };
}

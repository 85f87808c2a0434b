import { ACTIVITY_GAP_MS, type ActiveInterval, intervalsOf } from '../../recordings/activity.ts';
import {
  CONSOLE_PLUGIN,
  consoleLevelClass,
  EventType,
  field,
  IncrementalSource,
  isActiveSource,
  isClickInteraction,
} from '../../recordings/event-kinds.ts';

/**
 * One session's events, every window of it, as the player shows them: which window is shown when (the one the user
 * was in), each window's own stream for its replayer, the console entries and the event list beside it, and the
 * activity the scrubber marks and skip-inactivity skips. Pure: the player page loads this file in the browser
 * (browser-modules.ts), and the unit tests run it in Node.
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
  /** Each window's events for its own replayer: from a Meta and its first full snapshot on, in time order. */
  readonly streams: Readonly<Record<string, readonly TimelineEvent[]>>;
  /** Active stretches by the summary's rule (recordings/activity.ts), over every window's input. */
  readonly active: readonly ActiveInterval[];
  readonly console: readonly ConsoleEntry[];
  readonly listed: readonly ListedEvent[];
}

/** Longest console text and trace kept per entry: a page can log megabytes. */
const MAX_CONSOLE_TEXT = 2000;
const MAX_TRACE_FRAMES = 20;
const MAX_TRACE_FRAME_TEXT = 500;
const MAX_LABEL_TEXT = 200;
const MAX_NODE_TEXT = 40;
/**
 * The least a window stays shown before the player switches away: a mouse crossing between two windows side by side
 * must not flip the view on every batch of moves.
 */
export const MIN_SEGMENT_MS = 1000;
/** How long skip-inactivity keeps playing after an active stretch's last event. */
export const SKIP_LEAD_OUT_MS = 1000;
/** The viewport assumed for a window whose Meta event was not recorded (lost with an unreadable block). */
const DEFAULT_VIEWPORT = { width: 1280, height: 720 };

function sourceOf(event: TimelineEvent): number | undefined {
  if (event.type !== EventType.IncrementalSnapshot) return undefined;
  const source = field(event.data, 'source');
  return typeof source === 'number' ? source : undefined;
}

function isActive(event: TimelineEvent): boolean {
  const source = sourceOf(event);
  return source !== undefined && isActiveSource(source);
}

/**
 * Sources only a user in that window makes. Scrolls, resizes and media events are left out: a page in a background
 * tab makes those by itself (an auto-scrolling feed, a video), and must not pull the view to it.
 */
const userSources: ReadonlySet<number> = new Set([
  IncrementalSource.MouseMove,
  IncrementalSource.MouseInteraction,
  IncrementalSource.Input,
  IncrementalSource.TouchMove,
  IncrementalSource.Drag,
]);

/** When a user event began: a batch of moves is stamped with its last position and lists earlier ones as offsets. */
function userEventTime(event: TimelineEvent): number | undefined {
  const source = sourceOf(event);
  if (source === undefined || !userSources.has(source)) return undefined;
  const positions = field(event.data, 'positions');
  let earliest = 0;
  if (Array.isArray(positions)) {
    for (const position of positions) {
      const offset = field(position, 'timeOffset');
      if (typeof offset === 'number' && offset < earliest) earliest = offset;
    }
  }
  return event.timestamp + earliest;
}

/** Any recorded value as text, whatever it is (a hostile page can record objects whose toString throws). */
export function printable(value: unknown, max: number): string {
  if (typeof value === 'string') return value.slice(0, max);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) {
    return String(value);
  }
  try {
    return (JSON.stringify(value) ?? typeof value).slice(0, max);
  } catch {
    return `[${typeof value}]`;
  }
}

/** Events sorted by time; equal times keep their recorded order (Array.prototype.sort is stable). */
function byTime<T extends { readonly timestamp: number }>(events: readonly T[]): T[] {
  return [...events].sort((a, b) => a.timestamp - b.timestamp);
}

/**
 * Which window is shown when. The first is the window of the earliest full snapshot; after that the player follows
 * the user: a user event (mouse, input, touch, drag) in another window switches to that window, provided it has a
 * full snapshot by then (a window cannot be drawn before one) and the current window has been shown for
 * `MIN_SEGMENT_MS`. In between, the view stays on the last window used.
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
      const at = userEventTime(event);
      if (at !== undefined) activity.push({ timestamp: at, windowId });
    }
  }
  if (firstFull.size === 0) return [];
  const [firstWindow, start] = [...firstFull].reduce((a, b) => (b[1] < a[1] ? b : a));
  const segments: { windowId: string; start: number; end: number }[] = [{ windowId: firstWindow, start, end }];
  for (const { timestamp, windowId } of byTime(activity)) {
    const current = segments[segments.length - 1]!;
    if (windowId === current.windowId || timestamp < current.start + MIN_SEGMENT_MS || timestamp > end) continue;
    const drawable = firstFull.get(windowId);
    if (drawable === undefined || drawable > timestamp) continue;
    current.end = timestamp;
    segments.push({ windowId, start: timestamp, end });
  }
  return segments;
}

/**
 * Each window's stream for a replayer of its own: its events from its first full snapshot on, led by the Meta event
 * that sets the viewport (the last one before that snapshot; else the window's next one, or a default when none was
 * recorded). Events before the first full snapshot cannot be drawn and are left out, and so are events whose `data`
 * is not an object (rrweb would fail on them). Windows with no full snapshot have no stream.
 */
export function windowStreams(
  byWindow: Readonly<Record<string, readonly TimelineEvent[]>>,
): Record<string, TimelineEvent[]> {
  const streams: Record<string, TimelineEvent[]> = {};
  for (const [windowId, unsorted] of Object.entries(byWindow)) {
    // rrweb reads `data` of every event it is given as an object: capture carries any JSON there.
    const events = byTime(unsorted.filter((e) => typeof e.data === 'object' && e.data !== null));
    const full = events.findIndex((e) => e.type === EventType.FullSnapshot);
    if (full < 0) continue;
    const at = events[full]!.timestamp;
    const before = events.slice(0, full).findLast((e) => e.type === EventType.Meta);
    const later = events.find((e) => e.type === EventType.Meta);
    const meta = before ?? {
      type: EventType.Meta,
      timestamp: at,
      data: later?.data ?? { href: '', ...DEFAULT_VIEWPORT },
    };
    streams[windowId] = [{ ...meta, timestamp: Math.min(meta.timestamp, at) }, ...events.slice(full)];
  }
  return streams;
}

/**
 * Where skip-inactivity moves the playhead from `t`: to the start of the next active stretch when `t` lies in an
 * inactive one (more than `ACTIVITY_GAP_MS` without activity, counting from `start` before the first stretch), to
 * `end` after the last; else `t` itself. Each stretch plays on for `SKIP_LEAD_OUT_MS` after its last event, so the
 * page's answer to a click is seen. A session without any activity plays as it is.
 */
export function skipInactive(active: readonly ActiveInterval[], t: number, start: number, end: number): number {
  if (active.length === 0) return t;
  let previousEnd = start;
  for (const [from, to] of active) {
    if (t < from) return from - previousEnd > ACTIVITY_GAP_MS && t > previousEnd + SKIP_LEAD_OUT_MS ? from : t;
    if (t <= to) return t;
    previousEnd = Math.max(previousEnd, to);
  }
  return end - previousEnd > ACTIVITY_GAP_MS && t > previousEnd + SKIP_LEAD_OUT_MS ? end : t;
}

/** A console argument as rrweb's console plugin stringified it: JSON strings lose their quotes, the rest stays. */
function consoleArgument(value: unknown): string {
  if (typeof value !== 'string') return printable(value, MAX_CONSOLE_TEXT);
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
    level: typeof level === 'string' ? level.slice(0, 20) : 'log',
    kind: consoleLevelClass(level),
    text: (Array.isArray(args) ? args.map(consoleArgument).join(' ') : '').slice(0, MAX_CONSOLE_TEXT),
    trace: Array.isArray(trace) ? trace.slice(0, MAX_TRACE_FRAMES).map((f) => printable(f, MAX_TRACE_FRAME_TEXT)) : [],
  };
}

/** What a recorded node looks like in a list: `button#buy "Add to cart"`, from its tag, id or class, and text. */
class NodeLabels {
  private readonly labels = new Map<number, { element: string; text: string }>();

  /**
   * Takes every element and text node of a serialized (rrweb-snapshot) node tree; `parent` is its parent's id.
   * Walked with a stack of its own: a recorded page can nest deeper than the call stack.
   */
  add(root: unknown, rootParent?: number): void {
    const pending: { node: unknown; parent: number | undefined }[] = [{ node: root, parent: rootParent }];
    for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
      const { node, parent } = next;
      const id = field(node, 'id');
      const type = field(node, 'type');
      if (type === 2 && typeof id === 'number') this.labels.set(id, { element: elementLabel(node), text: '' });
      else if (type === 3 && parent !== undefined) {
        const owner = this.labels.get(parent);
        const text = printable(field(node, 'textContent') ?? '', 4 * MAX_NODE_TEXT).trim();
        if (owner && !owner.text && text) owner.text = text.slice(0, MAX_NODE_TEXT);
      }
      const children = field(node, 'childNodes');
      if (!Array.isArray(children)) continue;
      // Reversed onto the stack, so a parent's first text child is met first.
      for (let i = children.length - 1; i >= 0; i--) {
        pending.push({ node: children[i], parent: typeof id === 'number' ? id : parent });
      }
    }
  }

  of(id: unknown): string {
    const label = typeof id === 'number' ? this.labels.get(id) : undefined;
    if (!label) return 'an element';
    return label.text ? `${label.element} "${label.text}"` : label.element;
  }
}

function elementLabel(node: unknown): string {
  const attributes = field(node, 'attributes');
  const domId = field(attributes, 'id');
  const className = field(attributes, 'class');
  const tag = printable(field(node, 'tagName') ?? 'element', MAX_NODE_TEXT).toLowerCase();
  if (typeof domId === 'string' && domId) return `${tag}#${domId.slice(0, MAX_NODE_TEXT)}`;
  if (typeof className === 'string' && className.trim()) {
    return `${tag}.${className.trim().split(/\s+/)[0]!.slice(0, MAX_NODE_TEXT)}`;
  }
  return tag;
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
    push(event, 'navigation', href.slice(0, MAX_LABEL_TEXT));
  };
  for (const event of events) {
    if (event.type === EventType.FullSnapshot) nodes.add(field(event.data, 'node'));
    else if (event.type === EventType.Meta) navigation(event, field(event.data, 'href'));
    else if (event.type === EventType.Custom) {
      const href = field(field(event.data, 'payload'), 'href');
      const tag = printable(field(event.data, 'tag') ?? 'custom event', MAX_LABEL_TEXT);
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
      const action = printable(row.action_type, MAX_LABEL_TEXT);
      const label = row.item_id ? `${action} ${printable(row.item_id, MAX_LABEL_TEXT)}` : action;
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
  const streams = windowStreams(byWindow);
  const drawnFrom = (windowId: string) => streams[windowId]![1]!.timestamp;
  const windows = Object.keys(streams).sort((a, b) => drawnFrom(a) - drawnFrom(b));
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
    streams,
    active: intervalsOf(activeTimes),
    console: consoleEntries.sort((a, b) => a.timestamp - b.timestamp),
    listed,
  };
}

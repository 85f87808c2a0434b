/**
 * What kind of thing an rrweb event is, as the summary counts it and the player lists it: the event model's numeric
 * constants and the rules that group them (active input, clicks, console levels). Self-contained, without imports,
 * because the player page loads this very file in the browser (src/api/player/browser-modules.ts).
 */

export const EventType = { FullSnapshot: 2, IncrementalSnapshot: 3, Meta: 4, Custom: 5, Plugin: 6 } as const;

export const IncrementalSource = {
  Mutation: 0,
  MouseMove: 1,
  MouseInteraction: 2,
  Scroll: 3,
  ViewportResize: 4,
  Input: 5,
  TouchMove: 6,
  MediaInteraction: 7,
  Drag: 12,
} as const;

export const MouseInteraction = { Click: 2, ContextMenu: 3, DblClick: 4, TouchEnd: 9 } as const;

/** The `data.plugin` of rrweb's console recorder, which posthog-js uses for `enable_recording_console_log`. */
export const CONSOLE_PLUGIN = 'rrweb/console@1';

/** Incremental sources that are the user doing something: a session is active while they follow each other closely. */
const activeSources: ReadonlySet<number> = new Set([
  IncrementalSource.MouseMove,
  IncrementalSource.MouseInteraction,
  IncrementalSource.Scroll,
  IncrementalSource.ViewportResize,
  IncrementalSource.Input,
  IncrementalSource.TouchMove,
  IncrementalSource.MediaInteraction,
  IncrementalSource.Drag,
]);
const mouseActivitySources: ReadonlySet<number> = new Set([
  IncrementalSource.MouseMove,
  IncrementalSource.MouseInteraction,
  IncrementalSource.TouchMove,
]);
const clickTypes: ReadonlySet<number> = new Set([
  MouseInteraction.Click,
  MouseInteraction.ContextMenu,
  MouseInteraction.DblClick,
  MouseInteraction.TouchEnd,
]);

/** `value[key]` when `value` is an object, else undefined: how an event's opaque `data` is read. */
export function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

export function isActiveSource(source: number): boolean {
  return activeSources.has(source);
}

export function isMouseActivitySource(source: number): boolean {
  return mouseActivitySources.has(source);
}

/** Whether a MouseInteraction's `data.type` counts as a click. */
export function isClickInteraction(interaction: number): boolean {
  return clickTypes.has(interaction);
}

/** The class a console level is counted in: `warn` (warn, countReset), `error` (error, assert), else `log`. */
export function consoleLevelClass(level: unknown): 'log' | 'warn' | 'error' {
  if (level === 'warn' || level === 'countReset') return 'warn';
  if (level === 'error' || level === 'assert') return 'error';
  return 'log';
}

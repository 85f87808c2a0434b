import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { transformSync } from 'amaro';

/**
 * The player page's own scripts, served as ES modules under `/player/assets/<name>`. The TypeScript ones are the very
 * files the server runs (the timeline logic and the summary's activity rules, so the page and the summary agree):
 * their types are stripped (amaro, Node's own stripper) and their relative imports pointed at the served names.
 * Built once, at start-up, so a module that imports something not served fails there rather than in a browser.
 */

const root = join(import.meta.dirname, '..', '..');
const sources: Record<string, string> = {
  'player-app.js': join(import.meta.dirname, 'player-app.js'),
  'timeline-player.js': join(import.meta.dirname, 'timeline-player.js'),
  'session-timeline.js': join(import.meta.dirname, 'session-timeline.ts'),
  'activity.js': join(root, 'recordings', 'activity.ts'),
  'event-kinds.js': join(root, 'recordings', 'event-kinds.ts'),
};

export interface BrowserModule {
  readonly name: string;
  readonly code: Buffer;
}

/** A served module's text: a TypeScript source with its types stripped and its imports renamed. */
function moduleText(name: string, file: string, servedName: Map<string, string>): string {
  const text = readFileSync(file, 'utf8');
  if (!file.endsWith('.ts')) return text;
  const code = transformSync(text, { mode: 'strip-only' }).code;
  return code.replace(
    /(\bfrom\s*)(['"])(\.{1,2}\/[^'"]+\.ts)\2/g,
    (_match, from: string, quote: string, path: string) => {
      const target = servedName.get(resolve(dirname(file), path));
      if (!target) throw new Error(`player module ${name} imports ${path}, which is not served to the browser`);
      return `${from}${quote}./${target}${quote}`;
    },
  );
}

/** Every player module, by its served name. */
export function loadBrowserModules(): Map<string, BrowserModule> {
  const servedName = new Map(Object.entries(sources).map(([name, file]) => [resolve(file), name]));
  return new Map(
    Object.entries(sources).map(([name, file]) => [
      name,
      { name, code: Buffer.from(moduleText(name, file, servedName), 'utf8') },
    ]),
  );
}

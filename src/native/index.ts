import { nativeInflateGzipInto } from './gzip-inflate.ts';
import { nativeSkipValue } from './json-skip.ts';

/** Which native addons this process runs (false: built neither by scripts/setup nor loadable here). */
export function nativeAddons(): { readonly jsonSkip: boolean; readonly gzipInflate: boolean } {
  return { jsonSkip: nativeSkipValue !== undefined, gzipInflate: nativeInflateGzipInto !== undefined };
}

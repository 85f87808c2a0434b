import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * The exports of build/native/<name>.node (compiled from native/<name>.c by scripts/build-native, which scripts/setup
 * runs), or undefined when it is not built or does not load here: each caller then does the same work in JavaScript
 * or node:zlib, slower, with the same answers. Capture logs which ones it runs (`nativeAddons`).
 */
export function loadAddon<T>(name: string): T | undefined {
  try {
    return createRequire(import.meta.url)(
      fileURLToPath(new URL(`../../build/native/${name}.node`, import.meta.url)),
    ) as T;
  } catch {
    return undefined;
  }
}

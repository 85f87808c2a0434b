import { scanTopic } from '../kafka/scan-topic.ts';
import type { SummaryRow } from '../recordings/summary-row.ts';
import type { BlobStore } from '../storage/blob-store.ts';

export interface OrphanScan {
  /** Objects no committed summary row points at, within the window that can be judged. */
  readonly orphans: string[];
  readonly referenced: number;
  readonly examined: number;
  /** Objects too old to judge: the summary topic may no longer hold their rows. */
  readonly tooOld: number;
}

/** Milliseconds since epoch encoded in an object key (`.../{epochMillis}-{random}`), if it has one. */
export function objectTime(key: string): number | undefined {
  const match = /\/(\d{13})-[0-9a-f]+$/.exec(key);
  return match ? Number(match[1]) : undefined;
}

/**
 * Finds objects left behind by flushes whose transaction never committed (a crash between upload and commit, an
 * aborted transaction, a revoked partition). An object is an orphan when no committed row of the summary topic
 * points at it and it is older than `minAgeMs` (younger ones may belong to a flush still committing). Objects older
 * than `maxAgeMs` are not judged, because the topic's retention may have dropped their rows.
 */
export async function findOrphans(options: {
  readonly store: BlobStore;
  readonly prefix: string;
  readonly brokers: string;
  readonly summaryTopic: string;
  readonly minAgeMs: number;
  readonly maxAgeMs: number;
  readonly now?: number;
}): Promise<OrphanScan> {
  const now = options.now ?? Date.now();
  const referenced = new Set<string>();
  await scanTopic(options.brokers, options.summaryTopic, (message) => {
    try {
      const row = JSON.parse(message.value?.toString() ?? '') as SummaryRow;
      const key = options.store.keyOf(row.block_url.split('?')[0]!);
      if (key) referenced.add(key);
    } catch {
      // Not a summary row: nothing to learn from it.
    }
  });
  const orphans: string[] = [];
  let examined = 0;
  let tooOld = 0;
  for await (const key of options.store.list(`${options.prefix}/`)) {
    const time = objectTime(key);
    if (time === undefined) continue;
    examined++;
    if (now - time > options.maxAgeMs) {
      tooOld++;
      continue;
    }
    if (now - time >= options.minAgeMs && !referenced.has(key)) orphans.push(key);
  }
  return { orphans, referenced: referenced.size, examined, tooOld };
}

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openClickHouse } from '../../../src/clickhouse/client.ts';
import { migrateClickHouse } from '../../../src/clickhouse/migrations.ts';
import { DeletionStore } from '../../../src/deletion/deletion-store.ts';
import { DeletionWorker } from '../../../src/deletion/deletion-worker.ts';
import { createLogger } from '../../../src/logging/logger.ts';
import { openPostgres, type SqlDatabase } from '../../../src/postgres/database.ts';
import { migratePostgres } from '../../../src/postgres/migrations.ts';
import { FsBlobStore } from '../../../src/storage/fs-blob-store.ts';
import { type Team, TeamStore } from '../../../src/teams/team-store.ts';
import { createTestTeam } from '../../support/teams.ts';

const stack = inject('stack');

/**
 * A deletion request that can never succeed (its ClickHouse table is gone) is retried a bounded number of times,
 * then marked failed with its code, and the one-at-a-time queue moves on to the next request.
 */
describe('a deletion request that keeps failing', () => {
  let dir: string;
  let db: SqlDatabase;
  let clickhouse: ClickHouseClient;
  let team: Team;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'replay-delete-fail-'));
    db = await openPostgres({ kind: 'postgres', url: stack.postgres!.url });
    await migratePostgres(db);
    team = await createTestTeam(new TeamStore(db), { name: 'failing deletes' });
    clickhouse = openClickHouse({ kind: 'chdb', path: join(dir, 'db') });
  });
  afterAll(async () => {
    await clickhouse?.close();
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('fails after its tries, says why, and lets the next request run', async () => {
    const deletions = new DeletionStore(db);
    const worker = new DeletionWorker({
      deletions,
      clickhouse,
      blobs: new FsBlobStore(join(dir, 'blobs')),
      log: createLogger('error', 'deletion'),
      owner: 'test',
      maxAttempts: 3,
    });
    const request = (distinctId: string) =>
      deletions.create({ teamId: team.id, kind: 'filter', target: { distinctId }, keyId: null, requestedBy: 'test' });
    // No migrations yet: session_replay_events does not exist, so listing the filter's sessions cannot pass.
    const doomed = await request('nobody');
    await worker.drain();
    const failed = await deletions.get(team.id, doomed.id);
    expect(failed).toMatchObject({ status: 'failed', sessionsTotal: null });
    expect(failed?.error).toMatch(/^internal_error: .*session_replay_events/);

    await migrateClickHouse(clickhouse);
    const next = await request('nobody either');
    await worker.drain();
    expect(await deletions.get(team.id, next.id)).toMatchObject({ status: 'done', sessionsTotal: 0, error: null });
  });
});

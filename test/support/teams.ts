import { randomUUID } from 'node:crypto';
import type { Team, TeamStore } from '../../src/teams/team-store.ts';

/** A team with a fresh project token, recordings and console logs on, 30-day retention; tests set what they exercise. */
export function createTestTeam(teams: TeamStore, overrides: Partial<Omit<Team, 'id'>> = {}): Promise<Team> {
  return teams.create({
    name: 'test team',
    apiToken: `phc_${randomUUID().replaceAll('-', '')}`,
    sessionRecordingEnabled: true,
    retention: '30d',
    consoleLogCaptureEnabled: true,
    ...overrides,
  });
}

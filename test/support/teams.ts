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

/** A team as code that never stores one sees it (message builders, parsers): id 1, token `phc_x`. */
export const sampleTeam: Team = {
  id: 1,
  name: 't',
  apiToken: 'phc_x',
  sessionRecordingEnabled: true,
  retention: '30d',
  consoleLogCaptureEnabled: true,
};

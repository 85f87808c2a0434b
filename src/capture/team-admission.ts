import { ReplayError } from '../errors/index.ts';
import { MAX_TOKEN_LENGTH } from '../recordings/bounds.ts';
import type { Team } from '../teams/team-store.ts';
import { TokenBuckets } from './token-buckets.ts';

/** What a route asks of the team besides a good token (recordings: session recording enabled); throws to refuse. */
export type TeamRequirement = (team: Team) => void;

export const recordingEnabled: TeamRequirement = (team) => {
  if (!team.sessionRecordingEnabled) {
    throw new ReplayError('recordings_disabled', 'session recording is disabled for this project');
  }
};

/**
 * Who may send to capture: a project token resolves to its team (through the cached lookup, team-cache.ts), and each
 * admitted request takes one from its team's request rate (one bucket per team, shared by every route: recordings,
 * behaviours and posthog-js events). What must pass before a body is worked on (DESIGN §3.5.1).
 */
export class TeamAdmission {
  private readonly teamByToken: (token: string) => Promise<Team | undefined>;
  private readonly rate: TokenBuckets;

  constructor(teamByToken: (token: string) => Promise<Team | undefined>, teamRequestsPerSecond: number) {
    this.teamByToken = teamByToken;
    this.rate = new TokenBuckets({ ratePerSecond: teamRequestsPerSecond, burst: teamRequestsPerSecond * 2 });
  }

  /** The token's team: 401 `missing_token`/`invalid_token` (or the requirement's refusal), 503 when Postgres fails. */
  async resolve(token: string | undefined, requirement?: TeamRequirement): Promise<Team> {
    if (token === undefined || token === '') throw new ReplayError('missing_token', 'the request carries no token');
    if (token.length > MAX_TOKEN_LENGTH) {
      throw new ReplayError('invalid_token', `the project token is longer than ${MAX_TOKEN_LENGTH} characters`);
    }
    let team: Team | undefined;
    try {
      team = await this.teamByToken(token);
    } catch (error) {
      throw new ReplayError('team_lookup_failed', 'could not look up the token; retry later', { cause: error });
    }
    if (!team) throw new ReplayError('invalid_token', 'unknown project token');
    requirement?.(team);
    return team;
  }

  /** Resolves a token and takes one request from its team's rate (429 `rate_limited` beyond it). */
  async admit(token: string, requirement?: TeamRequirement): Promise<Team> {
    const team = await this.resolve(token, requirement);
    if (!this.rate.take(String(team.id))) {
      throw new ReplayError('rate_limited', `project ${team.id} is over its request rate; retry later`);
    }
    return team;
  }
}

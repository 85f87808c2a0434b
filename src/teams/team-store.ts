import type { SqlDatabase } from '../postgres/database.ts';
import type { RetentionClass } from '../recordings/message-codec.ts';

export interface Team {
  readonly id: number;
  readonly name: string;
  readonly apiToken: string;
  readonly sessionRecordingEnabled: boolean;
  readonly retention: RetentionClass;
  readonly consoleLogCaptureEnabled: boolean;
}

interface TeamRow extends Record<string, unknown> {
  id: string | number;
  name: string;
  api_token: string;
  session_recording_enabled: boolean;
  session_recording_retention: RetentionClass;
  console_log_capture_enabled: boolean;
}

const columns =
  'id, name, api_token, session_recording_enabled, session_recording_retention, console_log_capture_enabled';

function toTeam(row: TeamRow): Team {
  return {
    id: Number(row.id),
    name: row.name,
    apiToken: row.api_token,
    sessionRecordingEnabled: row.session_recording_enabled,
    retention: row.session_recording_retention,
    consoleLogCaptureEnabled: row.console_log_capture_enabled,
  };
}

/** Teams in Postgres (`schema/postgres/0001_teams.sql`). */
export class TeamStore {
  private readonly db: SqlDatabase;

  constructor(db: SqlDatabase) {
    this.db = db;
  }

  async byToken(apiToken: string): Promise<Team | undefined> {
    const [row] = await this.db.query<TeamRow>(`SELECT ${columns} FROM teams WHERE api_token = $1`, [apiToken]);
    return row ? toTeam(row) : undefined;
  }

  async byIds(ids: readonly number[]): Promise<Team[]> {
    if (ids.length === 0) return [];
    const rows = await this.db.query<TeamRow>(`SELECT ${columns} FROM teams WHERE id = ANY($1::bigint[]) ORDER BY id`, [
      ids,
    ]);
    return rows.map(toTeam);
  }

  async list(): Promise<Team[]> {
    return (await this.db.query<TeamRow>(`SELECT ${columns} FROM teams ORDER BY id`)).map(toTeam);
  }

  async create(team: Omit<Team, 'id'>): Promise<Team> {
    const [row] = await this.db.query<TeamRow>(
      `INSERT INTO teams (name, api_token, session_recording_enabled, session_recording_retention, console_log_capture_enabled)
       VALUES ($1, $2, $3, $4, $5) RETURNING ${columns}`,
      [team.name, team.apiToken, team.sessionRecordingEnabled, team.retention, team.consoleLogCaptureEnabled],
    );
    return toTeam(row!);
  }

  async update(id: number, changes: Partial<Omit<Team, 'id' | 'apiToken'>>): Promise<void> {
    const set: Record<string, unknown> = {
      name: changes.name,
      session_recording_enabled: changes.sessionRecordingEnabled,
      session_recording_retention: changes.retention,
      console_log_capture_enabled: changes.consoleLogCaptureEnabled,
    };
    const entries = Object.entries(set).filter(([, value]) => value !== undefined);
    if (entries.length === 0) return;
    await this.db.query(
      `UPDATE teams SET ${entries.map(([column], i) => `${column} = $${i + 2}`).join(', ')} WHERE id = $1`,
      [id, ...entries.map(([, value]) => value)],
    );
  }
}

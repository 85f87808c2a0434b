import { createHash, randomBytes } from 'node:crypto';
import type { SqlDatabase } from '../postgres/database.ts';

/** Every key starts with this, so a leaked key is recognisable (secret scanners, logs). */
export const API_KEY_PREFIX = 'rpk_';
/** `rpk_` and 43 base64url characters (32 random bytes). */
const API_KEY_PATTERN = /^rpk_[A-Za-z0-9_-]{43}$/;

/** What a key may do: `read` its teams' recordings and analytics (every key), `delete` them (DESIGN §3.9). */
export type ApiKeyScope = 'read' | 'delete';
export const apiKeyScopes: readonly ApiKeyScope[] = ['read', 'delete'];

export interface ApiKeyInfo {
  readonly id: number;
  readonly label: string;
  readonly scopes: readonly ApiKeyScope[];
  /** The first characters of the key, enough to recognise it. */
  readonly prefix: string;
  readonly teamIds: readonly number[];
  readonly createdAt: Date;
  readonly lastUsedAt: Date | null;
  readonly revokedAt: Date | null;
}

interface KeyRow extends Record<string, unknown> {
  id: string | number;
  label: string;
  prefix: string;
  scopes: string[];
  team_ids: (string | number)[] | null;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const toInfo = (row: KeyRow): ApiKeyInfo => ({
  id: Number(row.id),
  label: row.label,
  scopes: row.scopes.filter((scope): scope is ApiKeyScope => apiKeyScopes.includes(scope as ApiKeyScope)),
  prefix: row.prefix,
  teamIds: (row.team_ids ?? []).map(Number).sort((a, b) => a - b),
  createdAt: row.created_at,
  lastUsedAt: row.last_used_at,
  revokedAt: row.revoked_at,
});

const sha256 = (secret: string) => createHash('sha256').update(secret).digest();

/** Whether a string has the shape of a key at all: anything else is refused before it reaches SQL. */
export function looksLikeApiKey(value: string): boolean {
  return API_KEY_PATTERN.test(value);
}

const selectKeys = `SELECT k.id, k.label, k.prefix, k.scopes, k.created_at, k.last_used_at, k.revoked_at,
    array_remove(array_agg(t.team_id), NULL) AS team_ids
  FROM personal_api_keys k LEFT JOIN personal_api_key_teams t ON t.key_id = k.id`;

/** Personal API keys in Postgres (`schema/postgres/0002_personal_api_keys.sql`): stored hashed, scoped to teams. */
export class ApiKeyStore {
  private readonly db: SqlDatabase;

  constructor(db: SqlDatabase) {
    this.db = db;
  }

  /** Creates a key for `teamIds` (reading them, and what `scopes` adds). The secret is returned once, never stored. */
  async create(
    label: string,
    teamIds: readonly number[],
    scopes: readonly ApiKeyScope[] = ['read'],
  ): Promise<{ key: string; info: ApiKeyInfo }> {
    const key = `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
    const id = await this.db.transaction(async (tx) => {
      const [row] = await tx.query<{ id: string }>(
        'INSERT INTO personal_api_keys (label, prefix, secret_sha256, scopes) VALUES ($1, $2, $3, $4) RETURNING id',
        [label, key.slice(0, API_KEY_PREFIX.length + 6), sha256(key), [...new Set(['read', ...scopes])]],
      );
      for (const teamId of new Set(teamIds)) {
        await tx.query('INSERT INTO personal_api_key_teams (key_id, team_id) VALUES ($1, $2)', [row!.id, teamId]);
      }
      return Number(row!.id);
    });
    const [row] = await this.db.query<KeyRow>(`${selectKeys} WHERE k.id = $1 GROUP BY k.id`, [id]);
    return { key, info: toInfo(row!) };
  }

  /** The key's record when the secret matches a key that is not revoked; undefined otherwise. */
  async authenticate(key: string): Promise<ApiKeyInfo | undefined> {
    if (!looksLikeApiKey(key)) return undefined;
    const [row] = await this.db.query<KeyRow>(
      `${selectKeys} WHERE k.secret_sha256 = $1 AND k.revoked_at IS NULL GROUP BY k.id`,
      [sha256(key)],
    );
    if (!row) return undefined;
    // At most one write a minute per key: "last used" is for people auditing keys, not an access log.
    await this.db.query(
      `UPDATE personal_api_keys SET last_used_at = now()
        WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`,
      [row.id],
    );
    return toInfo(row);
  }

  async list(): Promise<ApiKeyInfo[]> {
    return (await this.db.query<KeyRow>(`${selectKeys} GROUP BY k.id ORDER BY k.id`)).map(toInfo);
  }

  /** Revokes by id; true when a live key was revoked. Takes effect on the next request (keys are not cached). */
  async revoke(id: number): Promise<boolean> {
    const rows = await this.db.query(
      'UPDATE personal_api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id',
      [id],
    );
    return rows.length > 0;
  }
}

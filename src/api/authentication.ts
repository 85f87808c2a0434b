import { ReplayError } from '../errors/index.ts';
import type { RouteContext } from '../http/router.ts';
import type { ApiKeyInfo, ApiKeyScope, ApiKeyStore } from './api-keys.ts';
import { parseTeamId } from './parameters.ts';

/**
 * The personal API key of a request (`Authorization: Bearer rpk_...`), shared by every `/api/` route of the API
 * service (replay and analytics). Keys are not cached, so a revocation takes effect on the next request.
 */
export async function authenticate(keys: ApiKeyStore, { req }: RouteContext): Promise<ApiKeyInfo> {
  const header = req.headers.authorization;
  if (!header) throw new ReplayError('missing_api_key', 'send a personal API key as "Authorization: Bearer rpk_..."');
  const bearer = /^Bearer +(\S{1,200})$/i.exec(header);
  let key: ApiKeyInfo | undefined;
  if (bearer) {
    try {
      key = await keys.authenticate(bearer[1]!);
    } catch (error) {
      throw new ReplayError('team_lookup_failed', 'Postgres could not check the API key', { cause: error });
    }
  }
  if (!key) throw new ReplayError('invalid_api_key', 'the API key is unknown, malformed or revoked');
  return key;
}

/**
 * The team the path's `:team` names, when the key may read it. Another team's data is "not found", never
 * "forbidden": a key learns nothing about teams it does not hold, not even that they exist.
 */
export async function authorisedTeam(keys: ApiKeyStore, context: RouteContext): Promise<number> {
  return (await authorisedFor(keys, context, 'read')).teamId;
}

/**
 * The key and the team of a request that needs `scope` for the path's team: another team is "not found" (as for
 * reads), and a key of the team without the scope is `insufficient_scope` (403).
 */
export async function authorisedFor(
  keys: ApiKeyStore,
  context: RouteContext,
  scope: ApiKeyScope,
): Promise<{ key: ApiKeyInfo; teamId: number }> {
  const key = await authenticate(keys, context);
  const teamId = parseTeamId(context.params.team!);
  if (!key.teamIds.includes(teamId)) throw new ReplayError('not_found', `no project ${teamId}`);
  if (!key.scopes.includes(scope)) {
    throw new ReplayError(
      'insufficient_scope',
      `this API key lacks the ${scope} scope (replay api-key create --scope ${scope})`,
    );
  }
  return { key, teamId };
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { ReplayError } from '../errors/index.ts';

export interface RouteContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  /** Named segments of the matched pattern (`:team` → params.team), URL-decoded. */
  readonly params: Readonly<Record<string, string>>;
}

export type RouteHandler = (context: RouteContext) => Promise<void> | void;

interface Route {
  readonly method: string;
  readonly pattern: RegExp;
  readonly names: readonly string[];
  readonly handler: RouteHandler;
  /** The pattern as written, used as the `route` label of metrics (bounded cardinality). */
  readonly label: string;
}

/** A small router: `GET /api/projects/:team/things/:id` patterns, trailing slash optional. */
export class Router {
  private readonly routes: Route[] = [];

  on(methods: string | readonly string[], path: string, handler: RouteHandler): this {
    const names: string[] = [];
    const source = path
      .replace(/\/$/, '')
      .split('/')
      .map((segment) => {
        if (segment.startsWith(':')) {
          names.push(segment.slice(1));
          return '([^/]+)';
        }
        if (segment === '*') {
          names.push('rest');
          return '(.+)';
        }
        return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      })
      .join('/');
    const pattern = new RegExp(`^${source}/?$`);
    for (const method of typeof methods === 'string' ? [methods] : methods) {
      this.routes.push({ method, pattern, names, handler, label: path });
    }
    return this;
  }

  /** Finds the handler for a request; 405 when the path exists under another method, 404 otherwise. */
  match(method: string, pathname: string): { handler: RouteHandler; params: Record<string, string>; label: string } {
    let pathMatched = false;
    for (const route of this.routes) {
      const found = route.pattern.exec(pathname);
      if (!found) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => {
        try {
          params[name] = decodeURIComponent(found[i + 1]!);
        } catch {
          throw new ReplayError('not_found', `malformed escape in ${pathname}`);
        }
      });
      return { handler: route.handler, params, label: route.label };
    }
    if (pathMatched) throw new ReplayError('method_not_allowed', `${method} is not allowed on ${pathname}`);
    throw new ReplayError('not_found', `no route for ${pathname}`);
  }
}

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ReplayError } from '../errors/index.ts';
import { sendJson } from '../http/respond.ts';
import type { Router } from '../http/router.ts';
import type { Team } from '../teams/team-store.ts';

/** posthog-js's own build directory: the recorder and loader files are served from it, unmodified. */
const posthogDist = join(dirname(createRequire(import.meta.url).resolve('posthog-js/package.json')), 'dist');
const STATIC_FILE = /^[A-Za-z0-9][\w.-]*\.js$/;

/**
 * The remote config posthog-js fetches at start-up. Recording starts only when `sessionRecording` is an object;
 * `supportedCompression` makes it gzip uploads (sent as text/plain without a CORS preflight);
 * `hasFeatureFlags: false` spares the `/flags` call; `autocapture_opt_out: false` lets a page's `autocapture: true`
 * take effect (posthog-js keeps autocapture off until the server allows it), whose events flow to `user_behaviors`.
 */
export function remoteConfig(team: Team | undefined): Record<string, unknown> {
  return {
    supportedCompression: ['gzip', 'gzip-js'],
    hasFeatureFlags: false,
    autocapture_opt_out: false,
    sessionRecording: team?.sessionRecordingEnabled
      ? { endpoint: '/s/', consoleLogRecordingEnabled: team.consoleLogCaptureEnabled }
      : false,
  };
}

/**
 * Routes posthog-js needs besides `/s/` and its analytics events: remote config, the lazy recorder, and harmless
 * `/flags`.
 */
export function addPosthogJsRoutes(router: Router, teamByToken: (token: string) => Promise<Team | undefined>): void {
  const configFor = async (token: string) => remoteConfig(await teamByToken(token).catch(() => undefined));

  router.on('GET', '/array/:token/config.js', async ({ res, params }) => {
    const config = JSON.stringify(await configFor(params.token!));
    const key = JSON.stringify(params.token);
    const script = `(function(){var c=window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{};c[${key}]={config:${config},siteApps:[]};})();\n`;
    res.writeHead(200, { 'content-type': 'application/javascript; charset=utf-8', 'cache-control': 'max-age=60' });
    res.end(script);
  });
  router.on('GET', '/array/:token/config', async ({ res, params }) =>
    sendJson(res, 200, await configFor(params.token!)),
  );

  // Static files: /static/<version>/<file>.js, /static/<file>.js (the recorder's fallback), /static/array.js (snippet).
  router.on('GET', '/static/*', async ({ res, params }) => {
    const name = params.rest!.split('/').at(-1)!;
    if (!STATIC_FILE.test(name)) throw new ReplayError('not_found', `no static file ${params.rest}`);
    const body = await readFile(join(posthogDist, name)).catch(() => {
      throw new ReplayError('not_found', `no static file ${name}`);
    });
    res.writeHead(200, { 'content-type': 'application/javascript; charset=utf-8', 'cache-control': 'max-age=3600' });
    res.end(body);
  });

  // Analytics events (`/e/`, `/batch`, ...) flow into user_behaviors (behavior-routes.ts). Person updates, other
  // vendors' tracking calls and feature flags are not this product: accepted and dropped so the SDK stays quiet.
  for (const path of ['/engage', '/track']) {
    router.on('POST', path, async ({ req, res }) => {
      req.resume();
      sendJson(res, 200, { status: 1 });
    });
  }
  for (const path of ['/flags', '/decide']) {
    router.on('POST', path, async ({ req, res }) => {
      req.resume();
      sendJson(res, 200, { flags: {}, featureFlags: {}, errorsWhileComputingFlags: false });
    });
  }
}

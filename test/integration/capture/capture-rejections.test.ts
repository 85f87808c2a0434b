import { randomBytes, randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { topicNames } from '../../../src/kafka/topics.ts';
import type { Team } from '../../../src/teams/team-store.ts';
import { postRaw, sampleRrwebEvents, snapshotBody, startTestCapture, type TestCapture } from '../../support/capture.ts';
import { headerOf, readTopic } from '../../support/kafka.ts';

const stack = inject('stack');

describe('capture rejects bad input with a status and a stable code, and writes nothing for it', () => {
  let capture: TestCapture;
  let team: Team;
  let disabled: Team;
  const rejectedSessions: string[] = [];
  const json = (value: unknown) => Buffer.from(JSON.stringify(value));
  const session = () => {
    const id = randomUUID();
    rejectedSessions.push(id);
    return id;
  };

  beforeAll(async () => {
    capture = await startTestCapture({ brokers: stack.kafka!.brokers, databaseUrl: stack.postgres!.url });
    team = await capture.createTeam();
    disabled = await capture.createTeam({ sessionRecordingEnabled: false });
  });
  afterAll(() => capture?.stop());

  const cases: [string, () => Promise<[Buffer, Record<string, string>?, string?, string?]>, number, string][] = [
    ['empty body', async () => [Buffer.alloc(0)], 400, 'empty_body'],
    // The token is authenticated before the body is parsed (DESIGN §3.5.1): what no token opens is refused for that.
    [
      'invalid JSON',
      async () => [
        Buffer.from(`[{"event": "$snapshot", "properties": {"token":"${team.apiToken}", "$snapshot_data": [`),
      ],
      400,
      'invalid_json',
    ],
    ['invalid JSON without a token', async () => [Buffer.from('[{"event": "$snapshot", ')], 401, 'missing_token'],
    [
      'a gzip header over garbage',
      async () => [Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.alloc(64, 7)])],
      415,
      'invalid_compression',
    ],
    ['a gzip bomb', async () => [gzipSync(Buffer.alloc(48 * 1024 * 1024, 0x20))], 413, 'decompression_ratio_exceeded'],
    [
      'Content-Encoding br',
      async () => [json(snapshotBody(team.apiToken, session(), sampleRrwebEvents())), { 'content-encoding': 'br' }],
      415,
      'unsupported_encoding',
    ],
    ['no token', async () => [json(snapshotBody('', session(), sampleRrwebEvents()))], 401, 'missing_token'],
    [
      'an unknown token',
      async () => [json(snapshotBody('phc_unknown', session(), sampleRrwebEvents()))],
      401,
      'invalid_token',
    ],
    [
      'an unknown token, gzip',
      async () => [gzipSync(json(snapshotBody('phc_unknown', session(), sampleRrwebEvents())))],
      401,
      'invalid_token',
    ],
    [
      'a token over 200 characters',
      async () => [json(snapshotBody(`phc_${'x'.repeat(300)}`, session(), sampleRrwebEvents()))],
      401,
      'invalid_token',
    ],
    [
      'an unknown token in the query string (the body is not read)',
      async () => [
        json(snapshotBody(team.apiToken, session(), sampleRrwebEvents())),
        {},
        'POST',
        '?token=phc_unknown_in_query',
      ],
      401,
      'invalid_token',
    ],
    [
      'a disabled team',
      async () => [json(snapshotBody(disabled.apiToken, session(), sampleRrwebEvents()))],
      401,
      'recordings_disabled',
    ],
    [
      'no session id',
      async () => [json(snapshotBody(team.apiToken, '', sampleRrwebEvents()))],
      400,
      'missing_session_id',
    ],
    [
      'a session id with ../',
      async () => [json(snapshotBody(team.apiToken, '../../etc/passwd', sampleRrwebEvents()))],
      400,
      'invalid_session_id',
    ],
    [
      'a 200-character session id',
      async () => [json(snapshotBody(team.apiToken, 'a'.repeat(200), sampleRrwebEvents()))],
      400,
      'invalid_session_id',
    ],
    // An event that breaks an input bound is dropped alone (capture-drops.test.ts); when it is the request's only
    // event, nothing is left and the request fails with its code.
    [
      'an event without a timestamp, alone',
      async () => [json(snapshotBody(team.apiToken, session(), [{ type: 3, data: {} }]))],
      400,
      'invalid_timestamp',
    ],
    [
      'an event without a type, alone',
      async () => [json(snapshotBody(team.apiToken, session(), [{ timestamp: Date.now(), data: {} }]))],
      400,
      'invalid_event',
    ],
    [
      'a timestamp past DateTime64 (9e15), alone',
      async () => [json(snapshotBody(team.apiToken, session(), [{ type: 3, timestamp: 9e15, data: {} }]))],
      400,
      'timestamp_out_of_range',
    ],
    [
      'a distinct_id over 200 characters',
      async () => [json(snapshotBody(team.apiToken, session(), sampleRrwebEvents(), { distinct_id: 'd'.repeat(201) }))],
      400,
      'distinct_id_too_long',
    ],
    [
      'no $snapshot events at all',
      async () => [json([{ event: '$pageview', properties: { token: team.apiToken } }])],
      400,
      'invalid_payload',
    ],
    ['a body over 25 MB', async () => [Buffer.alloc(25 * 1024 * 1024 + 1, 0x20)], 413, 'body_too_large'],
    [
      'one event over the 20 MB message limit',
      async () => {
        // Incompressible, so the body stays under 25 MB on the wire only if sent as it is.
        const payload = randomBytes(16 * 1024 * 1024).toString('base64');
        const huge = { type: 5, timestamp: Date.now(), data: { tag: 'blob', payload } };
        return [json(snapshotBody(team.apiToken, session(), [...sampleRrwebEvents(), huge]))];
      },
      413,
      'event_too_large',
    ],
    ['GET on /s/', async () => [Buffer.alloc(0), {}, 'GET'], 405, 'method_not_allowed'],
  ];

  it.each(cases.map(([name, build, status, code]) => ({ name, build, status, code })))(
    '$name → $status $code',
    async ({ build, status, code }) => {
      const [body, headers, method, query = ''] = await build();
      const answer = await postRaw(
        `${capture.url}/s/${query}`,
        body,
        { 'content-type': 'text/plain', ...headers },
        method,
      );
      expect(answer.status).toBe(status);
      expect(answer.body).toMatchObject({ code, type: expect.any(String), detail: expect.any(String) });
    },
  );

  it('accepts a good request next to them, and none of the rejected sessions reached Kafka', async () => {
    const good = randomUUID();
    const answer = await postRaw(
      `${capture.url}/s/`,
      gzipSync(json(snapshotBody(team.apiToken, good, sampleRrwebEvents()))),
    );
    expect(answer).toEqual({ status: 200, body: { status: 1 } });
    const messages = await readTopic(stack.kafka!.brokers, topicNames.recordings, {
      done: (got) => got.some((m) => headerOf(m, 'session_id') === good),
    });
    const sessions = new Set(messages.map((m) => headerOf(m, 'session_id')));
    expect(sessions.has(good)).toBe(true);
    for (const rejected of rejectedSessions) expect(sessions.has(rejected)).toBe(false);
  });
});

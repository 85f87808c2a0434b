import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type BodyLimits, defaultBodyLimits } from '../../../src/capture/body-encoding.ts';
import { InflightBudget } from '../../../src/capture/inflight-budget.ts';
import { readUpload } from '../../../src/capture/read-upload.ts';
import type { ErrorCode } from '../../../src/errors/catalogue.ts';
import { ReplayError } from '../../../src/errors/index.ts';
import {
  decoded,
  type FakeUploadOptions,
  mutated,
  outcome,
  truncated,
  undeclared,
  uploadOf,
  uploadUrl,
} from './fake-upload.ts';

function snapshotBody(token: string | undefined, events: unknown[], extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(
    JSON.stringify([
      {
        event: '$snapshot',
        properties: {
          $snapshot_bytes: 1,
          $snapshot_data: events,
          $session_id: 's-1',
          $window_id: 'w-1',
          token,
          ...extra,
        },
      },
    ]),
  );
}

const events = [
  { type: 4, timestamp: 1_763_800_000_000, data: { href: 'https://a/' } },
  { type: 3, timestamp: 1_763_800_000_100, data: { source: 2, type: 2 } },
];

describe('reading an upload as it streams', () => {
  it('decodes every encoding posthog-js uses to the original JSON, on every path', async () => {
    const json = snapshotBody('phc_x', events);
    const gz = gzipSync(json);
    const cases: { body: Buffer; headers?: Record<string, string>; query?: string }[] = [
      { body: json },
      { body: json, headers: { 'content-type': 'text/plain' } },
      { body: gz, query: '?compression=gzip-js' },
      { body: gz }, // gzip without the query parameter: detected by its magic bytes
      { body: gz, headers: { 'content-encoding': 'gzip' } },
      {
        body: Buffer.from(`data=${encodeURIComponent(json.toString('base64'))}`),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      },
      { body: Buffer.from(`data=${encodeURIComponent(json.toString('base64'))}`), query: '?compression=base64' },
      { body: Buffer.from(`data=${encodeURIComponent(gz.toString('base64'))}`) },
      { body: Buffer.from(json.toString('base64')), query: '?compression=base64' },
    ];
    for (const c of cases) {
      // declared: a small body is read whole (gzip inflated in one piece); undeclared: it is read as it streams
      for (const headers of [c.headers, { ...c.headers, ...undeclared }]) {
        for (const chunkSize of [1, 3, 7, 64 * 1024]) {
          const upload = await uploadOf(c.body, { query: c.query, headers, chunkSize });
          expect(upload.json.equals(json), `${c.query} ${JSON.stringify(headers)} ${chunkSize}`).toBe(true);
          expect(upload.wireBytes).toBe(c.body.length);
        }
      }
    }
  });

  it('refuses bad bodies with their catalogue codes', async () => {
    const json = snapshotBody('phc_x', events);
    const corrupt = Buffer.from(gzipSync(json));
    corrupt[12]! ^= 0xff;
    const cases: [Buffer, FakeUploadOptions, ErrorCode][] = [
      [Buffer.alloc(0), {}, 'empty_body'],
      [json, { headers: { 'content-encoding': 'br' } }, 'unsupported_encoding'],
      [json, { query: '?compression=lz64' }, 'unsupported_encoding'],
      [json, { headers: { 'content-encoding': 'gzip' } }, 'invalid_compression'],
      [
        Buffer.from(`data=${json.toString('base64')}`),
        { headers: { 'content-encoding': 'gzip' } },
        'invalid_compression',
      ],
      [gzipSync(json).subarray(0, 20), {}, 'invalid_compression'],
      [corrupt, {}, 'invalid_compression'],
      [Buffer.from('data=%%%notbase64'), {}, 'invalid_compression'],
      [Buffer.from('foo=bar'), { headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 'invalid_payload'],
      [Buffer.alloc(2000, 0x20), { maxBodyBytes: 1000 }, 'body_too_large'],
    ];
    for (const [body, options, code] of cases) {
      for (const headers of [options?.headers, { ...options?.headers, ...undeclared }]) {
        expect(await outcome(uploadOf(body, { ...options, headers })), `${code} ${JSON.stringify(headers)}`).toBe(code);
      }
    }
  });

  it('stops gzip bombs by ratio and oversized bodies by size, holding a bounded part of them', async () => {
    const limited = { maxDecompressedBytes: 1024 * 1024, maxCompressionRatio: 1e9, ratioFloorBytes: 0 };
    const bomb = gzipSync(Buffer.alloc(40 * 1024 * 1024)); // ~40 KB that would inflate to 40 MB
    expect(bomb.length).toBeLessThan(64 * 1024);
    const cases: [Buffer, BodyLimits, ErrorCode, number][] = [
      // the ratio guard: 500 x 40 KB is ~20 MB
      [bomb, defaultBodyLimits, 'decompression_ratio_exceeded', 22 * 1024 * 1024],
      [
        gzipSync(Buffer.alloc(48 * 1024 * 1024, 0x20)),
        defaultBodyLimits,
        'decompression_ratio_exceeded',
        27 * 1024 * 1024,
      ],
      [gzipSync(Buffer.alloc(2 * 1024 * 1024, 'a')), limited, 'decompressed_too_large', 1.5 * 1024 * 1024],
      [Buffer.alloc(2 * 1024 * 1024, 'a'), limited, 'decompressed_too_large', 2 * 1024 * 1024],
    ];
    for (const [body, limits, code, maxHeld] of cases) {
      for (const headers of [{}, undeclared]) {
        let held = 0;
        const budget = new InflightBudget(1024 * 1024 * 1024, (used) => {
          held = Math.max(held, used);
        });
        expect(await outcome(uploadOf(body, { limits, headers, budget })), `${code} ${body.length}`).toBe(code);
        expect(held, `${code} ${body.length} ${JSON.stringify(headers)}`).toBeLessThanOrEqual(maxHeld);
        expect(budget.inUse).toBe(0);
      }
    }
  });

  it('inflates without trusting the gzip trailer: several members, exact caps, a false ISIZE', async () => {
    const a = Buffer.from('a'.repeat(100_000));
    const b = Buffer.from(JSON.stringify({ b: 'é'.repeat(50) }));
    const limits = { maxDecompressedBytes: 200_000, maxCompressionRatio: 1e9, ratioFloorBytes: 0 };
    for (const headers of [{}, undeclared]) {
      for (const chunkSize of [7, 64 * 1024]) {
        const options = { headers, chunkSize };
        const label = `${JSON.stringify(headers)} ${chunkSize}`;
        // several gzip members: the trailer announces only the last one's size
        for (const [first, second] of [
          [a, b],
          [b, a],
        ] as const) {
          const body = Buffer.concat([gzipSync(first), gzipSync(second)]);
          expect(await outcome(uploadOf(body, options)), label).toBe(decoded(Buffer.concat([first, second])));
        }
        // exactly at the cap passes, one byte over does not
        for (const size of [1, 16_383, 16_384, 16_385, 199_999, 200_000]) {
          const body = Buffer.alloc(size, 'x');
          expect(await outcome(uploadOf(gzipSync(body), { ...options, limits })), `${label} ${size}`).toBe(
            decoded(body),
          );
        }
        expect(await outcome(uploadOf(gzipSync(Buffer.alloc(200_001, 'x')), { ...options, limits })), label).toBe(
          'decompressed_too_large',
        );
        // a trailer announcing another size is damage zlib reports
        for (const announced of [0, 10, 99_999, 0xffffffff]) {
          const lying = Buffer.from(gzipSync(a));
          lying.writeUInt32LE(announced, lying.length - 4);
          expect(await outcome(uploadOf(lying, options)), `${label} ${announced}`).toBe('invalid_compression');
        }
      }
    }
  });

  it('ends mutated and truncated bodies in a catalogue error or the exact JSON they carry', async () => {
    const json = snapshotBody('phc_x', events);
    const gz = gzipSync(json);
    const gzipMagic = Buffer.from([0x1f, 0x8b]);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(mutated(gz), mutated(json), truncated(gz), truncated(json)),
        fc.integer({ min: 1, max: 300 }),
        fc.boolean(),
        fc.boolean(),
        async (bytes, chunkSize, declared, saysGzip) => {
          // declared: a small gzip body is inflated in one piece; undeclared: as it streams
          const headers = { ...(declared ? {} : undeclared), ...(saysGzip ? { 'content-encoding': 'gzip' } : {}) };
          const result = await outcome(uploadOf(bytes, { chunkSize, headers }));
          if (bytes.length === 0) expect(result).toBe('empty_body');
          else if (bytes.subarray(0, 2).equals(gzipMagic)) {
            // gzip: its CRC and length catch the damage, or it was in a field that does not count (MTIME, OS)
            if (bytes.length < gz.length && gz.subarray(0, bytes.length).equals(bytes)) {
              expect(result).toBe('invalid_compression');
            } else expect([decoded(json), 'invalid_compression']).toContain(result);
          } else if (saysGzip) expect(result).toBe('invalid_compression');
          else expect(result).toBe(decoded(bytes)); // not gzip: the body is plain JSON, for JSON.parse to judge
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('inflates with libdeflate as with node:zlib: the same JSON or the same code, for mutated and hostile gzip', async () => {
    const json = snapshotBody('phc_x', events);
    const gz = gzipSync(json);
    const lying = Buffer.from(gz);
    lying.writeUInt32LE(10, lying.length - 4);
    // A header CRC (FHCRC), right and wrong: libdeflate skips it unchecked, so such bodies go to node:zlib.
    const withHeaderCrc = (right: boolean) => {
      const header = Buffer.from(gz.subarray(0, 10));
      header[3]! |= 0x02;
      const crc = Buffer.alloc(2);
      crc.writeUInt16LE((crc32(header) & 0xffff) ^ (right ? 0 : 0xffff));
      return Buffer.concat([header, crc, gz.subarray(10)]);
    };
    const bodies = fc.oneof(
      mutated(gz),
      truncated(gz),
      fc.constantFrom(
        lying,
        withHeaderCrc(true),
        withHeaderCrc(false),
        Buffer.concat([gz, gz]), // two members
        Buffer.concat([gz, Buffer.from('x')]), // trailing garbage
        gzipSync(Buffer.alloc(0)),
        gzipSync(Buffer.alloc(40 * 1024 * 1024)), // a bomb
      ),
    );
    await fc.assert(
      fc.asyncProperty(bodies, async (bytes) => {
        const native = await outcome(uploadOf(bytes, { nativeInflate: true }));
        expect(native).toBe(await outcome(uploadOf(bytes, { nativeInflate: false })));
      }),
      { numRuns: 500 },
    );
  });

  it('has the first token authenticated before the rest of the body is inflated', async () => {
    const seen: string[] = [];
    const upload = await uploadOf(gzipSync(snapshotBody('phc_good', events)), {
      authenticate: async (token) => {
        seen.push(token);
      },
    });
    expect(seen).toEqual(['phc_good']);
    expect(upload.token).toBe('phc_good');
    // no authenticate (the token came in the query string): the body is not looked at
    expect((await uploadOf(gzipSync(snapshotBody('phc_good', events)))).token).toBeUndefined();
  });

  it('a refused token stops the upload: the rest is neither read nor inflated', async () => {
    // 20 MB of incompressible events after a small first item that carries the token
    const noise = Buffer.alloc(15 * 1024 * 1024);
    for (let i = 0; i < noise.length; i += 4) noise.writeUInt32LE((Math.imul(i, 2654435761) ^ (i >>> 7)) >>> 0, i);
    const body = Buffer.from(
      JSON.stringify([
        { event: '$snapshot', properties: { $snapshot_data: events, $session_id: 'a', token: 'phc_bogus' } },
        {
          event: '$snapshot',
          properties: {
            $snapshot_data: [{ type: 5, timestamp: 1, data: noise.toString('base64') }],
            token: 'phc_bogus',
          },
        },
      ]),
    );
    const gz = gzipSync(body);
    expect(gz.length).toBeGreaterThan(15 * 1024 * 1024);

    const server = createServer(async (req, res) => {
      const budget = new InflightBudget(1024 * 1024 * 1024);
      const lease = budget.lease();
      try {
        await readUpload(req, uploadUrl(), {
          maxBodyBytes: 25 * 1024 * 1024,
          bodyLimits: defaultBodyLimits,
          lease,
          authenticate: async () => {
            throw new ReplayError('invalid_token', 'unknown project token');
          },
        });
        res.writeHead(200).end();
      } catch (error) {
        const read = req.socket.bytesRead;
        res.writeHead(401, { connection: 'close' }).end(JSON.stringify({ code: (error as ReplayError).code, read }));
      } finally {
        lease.release();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const answer = await new Promise<{ status: number; body: { code: string; read: number } }>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port, path: '/s/', method: 'POST', headers: { 'content-length': gz.length } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString()) }),
            );
          },
        );
        req.on('error', (error) => setTimeout(() => reject(error), 2000).unref());
        req.end(gz);
      });
      expect(answer.status).toBe(401);
      expect(answer.body.code).toBe('invalid_token');
      // read: the first item plus read-ahead and socket buffers, far from the 15 MB sent
      expect(answer.body.read).toBeLessThan(4 * 1024 * 1024);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('tells a decoy "token" key inside an event from the real token', async () => {
    const decoyFirst = snapshotBody('phc_real', [
      { type: 2, timestamp: 1, data: { node: { attributes: { token: 'decoy' } } } },
      ...events,
    ]);
    const asked: string[] = [];
    const authenticate = async (token: string) => {
      asked.push(token);
      if (token !== 'phc_real') throw new ReplayError('invalid_token', 'unknown project token');
    };
    // The token after the events, as posthog-js writes it: a streamed body meets the decoy first; a small one, read
    // whole, is searched from its end and meets the token first.
    for (const body of [decoyFirst, gzipSync(decoyFirst)]) {
      for (const [headers, expected] of [
        [{ 'content-length': '' }, ['decoy', 'phc_real']],
        [{}, ['phc_real']],
      ] as const) {
        asked.length = 0;
        const upload = await uploadOf(body, { authenticate, chunkSize: 11, headers });
        expect(asked).toEqual(expected);
        expect(upload.token).toBe('phc_real');
      }
    }
    // the token before the events: searched from the end, the decoy comes first
    const tokenFirst = Buffer.from(
      JSON.stringify([
        {
          event: '$snapshot',
          properties: {
            token: 'phc_real',
            $session_id: 's',
            $snapshot_data: [{ type: 5, timestamp: 1, data: { token: 'decoy' } }],
          },
        },
      ]),
    );
    asked.length = 0;
    expect((await uploadOf(gzipSync(tokenFirst), { authenticate })).token).toBe('phc_real');
    expect(asked).toEqual(['decoy', 'phc_real']);
    // the real token is bad: refused once the exact scan confirms it
    const bad = snapshotBody('phc_bad', events);
    asked.length = 0;
    expect(await outcome(uploadOf(gzipSync(bad), { authenticate }))).toBe('invalid_token');
    expect(asked).toEqual(['phc_bad']);
    // only a decoy, no token where one belongs
    const decoyOnly = snapshotBody(undefined, [{ type: 5, timestamp: 1, data: { token: 'decoy' } }]);
    expect(await outcome(uploadOf(decoyOnly, { authenticate }))).toBe('missing_token');
    // no candidate for the fast search (an escaped key): the exact scan of the whole body finds the token
    asked.length = 0;
    const escaped = Buffer.from(
      snapshotBody(undefined, events).toString().replace('"$session_id"', '"tok\\u0065n":"phc_real","$session_id"'),
    );
    expect((await uploadOf(escaped, { authenticate })).token).toBe('phc_real');
    expect(asked).toEqual(['phc_real']);
  });

  it('a declared body that does not fit the in-flight budget is refused before it is read', async () => {
    const budget = new InflightBudget(1024 * 1024);
    const held = budget.lease();
    held.take(900 * 1024);
    const body = gzipSync(snapshotBody('phc_x', events));
    const padded = Buffer.concat([body, Buffer.alloc(200 * 1024)]);
    expect(await outcome(uploadOf(padded, { budget }))).toBe('capture_overloaded');
    expect(budget.inUse).toBe(900 * 1024);
    // alone, any request fits
    held.release();
    expect(await outcome(uploadOf(padded, { budget }))).toMatch(/^ok:/);
    expect(budget.inUse).toBe(0);
    // decoded bytes count too: ~0.7 MiB on the wire fits, the 3 MiB it inflates to does not
    const letters = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < letters.length; i++) letters[i] = 0x61 + ((Math.imul(i, 2654435761) >>> 13) & 3);
    const gz = gzipSync(letters);
    expect(gz.length).toBeLessThan(900 * 1024);
    const other = budget.lease();
    other.take(1024);
    expect(await outcome(uploadOf(gz, { budget }))).toBe('capture_overloaded');
    other.release();
    expect(budget.inUse).toBe(0);
  });
});

import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3BlobStore } from '../../../src/storage/s3-blob-store.ts';

/**
 * What an upload puts on the wire (a loopback HTTP server answering like S3 records each request): the payload is not
 * hashed for the signature, but every part carries its CRC32, inside the signed headers, for S3 to check.
 */
describe('S3 uploads', () => {
  const requests: { method: string; url: string; headers: IncomingHttpHeaders; body: Buffer }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      requests.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) });
      const url = req.url!;
      res.writeHead(200, { etag: '"e"', 'content-type': 'application/xml' });
      if (url.includes('uploads') && req.method === 'POST') {
        res.end('<InitiateMultipartUploadResult><UploadId>u-1</UploadId></InitiateMultipartUploadResult>');
      } else if (req.method === 'POST') {
        res.end('<CompleteMultipartUploadResult><ETag>"e"</ETag></CompleteMultipartUploadResult>');
      } else {
        res.end();
      }
    });
  });
  let store: S3BlobStore;
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    store = new S3BlobStore({
      bucket: 'b',
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      forcePathStyle: true,
      credentials: { accessKeyId: 'key', secretAccessKey: 'secret' },
      maxAttempts: 1,
      partSize: 5 * 1024 * 1024,
    });
  });
  afterAll(() => {
    store.close();
    server.close();
  });

  const expectChecked = (request: (typeof requests)[number]) => {
    expect(request.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(request.body));
    expect(request.headers['x-amz-checksum-crc32']).toBe(crc.toString('base64'));
    expect(String(request.headers.authorization)).toMatch(/SignedHeaders=[^,]*x-amz-checksum-crc32/);
  };

  it('a small object: one PUT, unsigned payload, its CRC32 signed in', async () => {
    requests.length = 0;
    const writer = store.newObject('small');
    await writer.write(Buffer.from('hello blocks'));
    await writer.finish();
    const puts = requests.filter((r) => r.method === 'PUT');
    expect(puts).toHaveLength(1);
    expectChecked(puts[0]!);
  });

  it('a multipart object: every part unsigned with its own CRC32', async () => {
    requests.length = 0;
    const writer = store.newObject('large');
    const block = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < 12; i++) await writer.write(block.fill(i));
    await writer.finish();
    const parts = requests.filter((r) => r.method === 'PUT');
    expect(parts.length).toBe(3);
    for (const part of parts) expectChecked(part);
  });
});

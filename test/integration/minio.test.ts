import { randomBytes, randomUUID } from 'node:crypto';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { beforeAll, describe, expect, inject, it } from 'vitest';

const minio = inject('stack').minio!;

describe('MinIO (real S3-compatible server)', () => {
  const bucket = `smoke-${randomUUID()}`;
  const s3 = new S3Client({
    endpoint: minio.endpoint,
    region: minio.region,
    forcePathStyle: true,
    credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
  });

  beforeAll(async () => {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  });

  it('stores a multipart upload and serves byte ranges of it', async () => {
    const partSize = 5 * 1024 * 1024; // S3's minimum part size
    const body = randomBytes(partSize * 2 + 12345);
    const key = 'objects/2026/11/22/multipart';
    await new Upload({ client: s3, params: { Bucket: bucket, Key: key, Body: body }, partSize, queueSize: 2 }).done();

    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.ContentLength).toBe(body.length);
    expect(head.ETag).toMatch(/-3"$/); // a multipart ETag names its part count

    for (const [start, end] of [
      [0, 0],
      [partSize - 10, partSize + 10], // across a part boundary
      [body.length - 100, body.length - 1],
    ] as const) {
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${end}` }));
      const bytes = Buffer.from(await got.Body!.transformToByteArray());
      expect(got.ContentRange).toBe(`bytes ${start}-${end}/${body.length}`);
      expect(bytes.equals(body.subarray(start, end + 1))).toBe(true);
    }
  });
});

import { createHmac } from 'node:crypto';
import { metric, parseMetrics } from './prometheus-text.ts';

interface MinioAccess {
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

const base64url = (value: string | Buffer) => Buffer.from(value).toString('base64url');

/**
 * S3 requests a MinIO server has answered so far, by API name (PutObject, PutObjectPart, NewMultipartUpload,
 * CompleteMultipartUpload, GetObject, ...), from its v3 metrics (the v2 ones are cached for about 10 s). The bearer
 * token is the one `mc admin prometheus generate` makes: a JWT signed HS512 with the secret key, issuer "prometheus".
 */
export async function minioRequests(minio: MinioAccess): Promise<Record<string, number>> {
  const header = base64url(JSON.stringify({ alg: 'HS512', typ: 'JWT' }));
  const claims = base64url(
    JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 300, sub: minio.accessKeyId, iss: 'prometheus' }),
  );
  const signature = base64url(createHmac('sha512', minio.secretAccessKey).update(`${header}.${claims}`).digest());
  const response = await fetch(`${minio.endpoint}/minio/metrics/v3/api/requests`, {
    headers: { authorization: `Bearer ${header}.${claims}.${signature}` },
  });
  if (!response.ok) throw new Error(`MinIO metrics: HTTP ${response.status}`);
  const samples = parseMetrics(await response.text()).filter(
    (s) => s.name === 'minio_api_requests_total' && s.labels.type === 's3',
  );
  const apis = new Set(samples.map((s) => s.labels.name ?? ''));
  return Object.fromEntries(
    [...apis].map((api) => [api, metric(samples, 'minio_api_requests_total', { name: api, type: 's3' })]),
  );
}

/** Requests answered between two `minioRequests` snapshots, by API name (those with none left out). */
export function requestsBetween(
  before: Readonly<Record<string, number>>,
  after: Readonly<Record<string, number>>,
): Record<string, number> {
  return Object.fromEntries(
    Object.entries(after)
      .map(([api, n]) => [api, n - (before[api] ?? 0)] as const)
      .filter(([, n]) => n > 0),
  );
}

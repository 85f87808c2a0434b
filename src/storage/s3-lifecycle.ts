import {
  GetBucketLifecycleConfigurationCommand,
  HeadBucketCommand,
  type LifecycleRule,
  PutBucketLifecycleConfigurationCommand,
} from '@aws-sdk/client-s3';
import { ReplayError } from '../errors/index.ts';
import { retentionClasses } from '../recordings/message-codec.ts';
import { retentionDays } from '../recordings/summary-row.ts';
import type { S3BlobStore } from './s3-blob-store.ts';

/**
 * Days after which S3 aborts a multipart upload that never completed (a flush that died mid-upload and could not
 * abort it): its parts are billed but belong to no object. A flush takes seconds, so a day never cuts a live one.
 */
const ABORT_INCOMPLETE_UPLOAD_DAYS = 1;

/**
 * The bucket's lifecycle rules for objects under `prefix` (DESIGN §3.3, §3.9): one per retention class, expiring
 * `{prefix}/{class}/` the class's days after creation. Each rule also aborts unfinished multipart uploads under its
 * prefix, which covers every upload the pipeline makes; a rule of its own for that would be simpler, but MinIO
 * refuses a rule whose only action is AbortIncompleteMultipartUpload (it ignores the action inside an expiration
 * rule and purges stale uploads itself after 24 hours).
 */
export function retentionLifecycleRules(prefix: string): LifecycleRule[] {
  return retentionClasses.map((retention) => ({
    ID: `expire-${retention}`,
    Status: 'Enabled',
    Filter: { Prefix: `${prefix}/${retention}/` },
    Expiration: { Days: retentionDays[retention] },
    AbortIncompleteMultipartUpload: { DaysAfterInitiation: ABORT_INCOMPLETE_UPLOAD_DAYS },
  }));
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function failed(store: S3BlobStore, action: string, error: unknown): ReplayError {
  const detail = `${action} of bucket ${store.bucket} failed: ${(error as Error).message}`;
  return new ReplayError('blob_store_unavailable', detail, { cause: error });
}

/**
 * Replaces the bucket's lifecycle configuration with exactly `retentionLifecycleRules(prefix)`, so running it again
 * changes nothing and rules added by hand are dropped. Answers the rules the bucket holds afterwards, as read back
 * (a store may keep less than it was sent). A bucket that does not exist is `bucket_missing`: it is not created,
 * since its region, encryption and access policy are the operator's, and a mistyped S3_BUCKET must not quietly make
 * an empty one. The existence check comes first because MinIO answers a lifecycle PUT on a missing bucket with 200.
 */
export async function applyRetentionLifecycle(store: S3BlobStore, prefix: string): Promise<LifecycleRule[]> {
  try {
    await store.client.send(new HeadBucketCommand({ Bucket: store.bucket }));
  } catch (error) {
    if (httpStatus(error) === 404) {
      throw new ReplayError('bucket_missing', `bucket ${store.bucket} does not exist (${store.description})`);
    }
    throw failed(store, 'HeadBucket', error);
  }
  try {
    await store.client.send(
      new PutBucketLifecycleConfigurationCommand({
        Bucket: store.bucket,
        LifecycleConfiguration: { Rules: retentionLifecycleRules(prefix) },
      }),
    );
    const applied = await store.client.send(new GetBucketLifecycleConfigurationCommand({ Bucket: store.bucket }));
    return applied.Rules ?? [];
  } catch (error) {
    throw failed(store, 'setting the lifecycle configuration', error);
  }
}

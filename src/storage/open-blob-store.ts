import type { Config } from '../config/index.ts';
import type { BlobStore } from './blob-store.ts';
import { FsBlobStore } from './fs-blob-store.ts';
import { S3BlobStore } from './s3-blob-store.ts';

/** The blob store the configuration names (BLOB_STORE). */
export function openBlobStore(config: Config): BlobStore {
  if (config.blobStore === 'fs') return new FsBlobStore(config.blobFsRoot);
  return openS3BlobStore(config);
}

/** The S3 bucket of the S3_* settings, whatever BLOB_STORE says (`migrate` applies its lifecycle rules). */
export function openS3BlobStore(config: Config): S3BlobStore {
  return new S3BlobStore({
    bucket: config.s3Bucket,
    region: config.s3Region,
    forcePathStyle: config.s3ForcePathStyle,
    connectTimeoutMs: config.s3ConnectTimeoutMs,
    requestTimeoutMs: config.s3RequestTimeoutMs,
    ...(config.s3Endpoint ? { endpoint: config.s3Endpoint } : {}),
    ...(config.s3AccessKeyId
      ? { credentials: { accessKeyId: config.s3AccessKeyId, secretAccessKey: config.s3SecretAccessKey } }
      : {}),
    ...(config.s3ServerSideEncryption ? { serverSideEncryption: config.s3ServerSideEncryption } : {}),
    ...(config.s3KmsKeyId ? { kmsKeyId: config.s3KmsKeyId } : {}),
  });
}

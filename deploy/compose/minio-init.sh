#!/bin/sh
# One-shot setup of the recordings bucket on MinIO (docker-compose.yml's minio-init), idempotent: the bucket, and the
# S3 user the blob consumers, the replay API and migrate share, with read-write access. `replay migrate` then applies
# the lifecycle rules that expire each retention class.
set -eu
mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "local/$S3_BUCKET"
mc admin user add local "$S3_ACCESS_KEY_ID" "$S3_SECRET_ACCESS_KEY"
mc admin policy attach local readwrite --user "$S3_ACCESS_KEY_ID" || true # already attached on a rerun
echo "minio-init: bucket $S3_BUCKET ready"

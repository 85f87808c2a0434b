#!/bin/sh
# One-shot setup of the recordings bucket on MinIO (docker-compose.yml's minio-init), idempotent:
# the bucket, one lifecycle rule per retention class ({prefix}/{class}/ expires after the class's days), and the S3
# user the blob consumers and the replay API share, with read-write access.
set -eu
mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing "local/$S3_BUCKET"
rules=""
for class in 30d:30 90d:90 1y:365 5y:1825; do
  name="${class%%:*}"
  days="${class##*:}"
  rule="{\"ID\":\"expire-$name\",\"Status\":\"Enabled\",\"Filter\":{\"Prefix\":\"$BLOB_PREFIX/$name/\"},\"Expiration\":{\"Days\":$days}}"
  rules="${rules:+$rules,}$rule"
done
# import replaces the bucket's whole lifecycle configuration, so a rerun leaves exactly these rules.
echo "{\"Rules\":[$rules]}" | mc ilm import "local/$S3_BUCKET"
mc ilm rule ls "local/$S3_BUCKET"
mc admin user add local "$S3_ACCESS_KEY_ID" "$S3_SECRET_ACCESS_KEY"
mc admin policy attach local readwrite --user "$S3_ACCESS_KEY_ID" || true # already attached on a rerun
echo "minio-init: bucket $S3_BUCKET ready"

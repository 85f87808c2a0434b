# syntax=docker/dockerfile:1
# One image for every role: `docker run <image> capture | blob-consumer | sink | behaviors-sink | realtime-sink | api
# | migrate | api-key ...`. Node 24 runs the TypeScript sources directly (type stripping), so there is no compile
# step; the build stage exists for the native addons (node-rdkafka builds librdkafka, chdb fetches its engine, and
# native/ holds capture's own two).
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
# hadolint ignore=DL3008
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make gcc g++ ca-certificates libssl-dev libsasl2-dev libzstd-dev zlib1g-dev libdeflate-dev \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# Exactly what the lockfile pins (as scripts/setup does: `npm ci` refuses any lock this project's registry can
# produce, for want of chdb's optional packages for other platforms), without dev dependencies.
RUN npm install --no-save --no-audit --no-fund --omit=dev \
  && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY schema ./schema
# capture's native JSON skipper, against the image's own Node headers.
COPY scripts/env.sh scripts/build-native ./scripts/
COPY native ./native
RUN bash scripts/build-native

FROM ${NODE_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
  && apt-get install -y --no-install-recommends ca-certificates libssl3 libsasl2-2 libzstd1 libdeflate0 \
  && rm -rf /var/lib/apt/lists/* \
  && groupadd --system --gid 10001 replay \
  && useradd --system --uid 10001 --gid replay --home-dir /var/lib/replay --create-home replay
WORKDIR /app
COPY --from=build --chown=root:root /app /app
# Containers listen on every interface of their own network namespace; the spool and any local state live under
# /var/lib/replay (a volume in compose, a PersistentVolumeClaim in the chart).
ENV NODE_ENV=production \
  REPLAY_DATA_DIR=/var/lib/replay \
  BLOB_SPOOL_DIR=/var/lib/replay/spool \
  CAPTURE_HOST=0.0.0.0 \
  BLOB_CONSUMER_HOST=0.0.0.0 \
  SINK_HOST=0.0.0.0 \
  BEHAVIORS_HOST=0.0.0.0 \
  REALTIME_HOST=0.0.0.0 \
  API_HOST=0.0.0.0
USER 10001:10001
VOLUME ["/var/lib/replay"]
EXPOSE 8010 8011 8012 8013 8016 8017
# Probes the role PID 1 runs (read from its command line), on the port its settings give.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["node", "bin/replay.js", "healthcheck"]
ENTRYPOINT ["node", "bin/replay.js"]
CMD ["--help"]

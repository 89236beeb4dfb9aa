#!/usr/bin/env bash
# The whole test suite: lint, unit tests, then integration tests against a real Kafka broker that this
# script starts (when none is running) and stops again. Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
KAFKA=deploy/kafka/kafka.sh
export CLAIMWATCH_KAFKA_PORT="${CLAIMWATCH_KAFKA_PORT:-9092}"
export CLAIMWATCH_BOOTSTRAP_SERVERS="${CLAIMWATCH_BOOTSTRAP_SERVERS:-127.0.0.1:${CLAIMWATCH_KAFKA_PORT}}"

started_kafka=0
stop_kafka() {
  if [ "$started_kafka" = 1 ]; then
    bash "$KAFKA" stop || true
  fi
}
trap stop_kafka EXIT

echo "== lint (ruff)"
"$BIN/ruff" check . || exit 1

if ! bash "$KAFKA" status >/dev/null 2>&1; then
  bash "$KAFKA" start || { echo "could not start Kafka: see the log above"; exit 1; }
  started_kafka=1
fi

echo "== tests (unit + integration, real broker at $CLAIMWATCH_BOOTSTRAP_SERVERS)"
"$BIN/python" -m pytest tests "$@"

#!/usr/bin/env bash
# The whole test suite: lint, unit tests, then integration tests against a real Kafka broker that
# scripts/with_kafka.sh starts (when none is running) and stops again. Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export CLAIMWATCH_KAFKA_PORT="${CLAIMWATCH_KAFKA_PORT:-9092}"
export CLAIMWATCH_BOOTSTRAP_SERVERS="${CLAIMWATCH_BOOTSTRAP_SERVERS:-127.0.0.1:${CLAIMWATCH_KAFKA_PORT}}"

echo "== lint (ruff)"
"$BIN/ruff" check . || exit 1

echo "== tests (unit + integration, real broker at $CLAIMWATCH_BOOTSTRAP_SERVERS)"
bash scripts/with_kafka.sh "$BIN/python" -m pytest tests "$@"

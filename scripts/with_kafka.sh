#!/usr/bin/env bash
# Run a command with a Kafka broker: the one already running at CLAIMWATCH_KAFKA_PORT (default 9092), or one
# that this script starts with deploy/kafka/kafka.sh and stops again when the command ends. Exits with the
# command's status. Used by `make test`, `make bench` and `make soak`.
set -uo pipefail
cd "$(dirname "$0")/.."
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

if ! bash "$KAFKA" status >/dev/null 2>&1; then
  bash "$KAFKA" start || { echo "could not start Kafka: see the log above"; exit 1; }
  started_kafka=1
fi

"$@"
status=$?
exit "$status"

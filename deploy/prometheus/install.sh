#!/usr/bin/env bash
# Installs Prometheus and Alertmanager (with promtool and amtool) from Debian packages when missing.
# Tests that need them skip with a reason when they are absent and this script could not install them.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v amtool >/dev/null \
   && command -v prometheus-alertmanager >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "prometheus/alertmanager missing and cannot install them (need root and apt-get): their tests will skip" >&2
  exit 0
fi
echo "installing prometheus and prometheus-alertmanager from Debian packages..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends prometheus prometheus-alertmanager >/dev/null
# The packages may start system services where an init system runs; tests start their own instances.
if command -v service >/dev/null; then
  service prometheus stop >/dev/null 2>&1 || true
  service prometheus-alertmanager stop >/dev/null 2>&1 || true
fi

#!/bin/bash
# Checks the units of systemd/ (ragd.service, ragd.socket, ragd-metrics.service, ragd-metrics.timer):
# `systemd-analyze verify` must pass without a word, and each service's `systemd-analyze security` exposure must not
# exceed MAX (default 2.0). verify wants ExecStart's binary to exist, so the units are checked as copies whose
# ExecStart is RAGD_BINARY (default: .build/debug/ragd, built by `swift build`) or the ragctl beside it.
#   usage: bench/check-units.sh [RAGD_BINARY] [MAX]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
binary=${1:-$root/.build/debug/ragd}
max=${2:-2.0}
ragctl=$(dirname "$binary")/ragctl
[ -x "$binary" ] || { echo "no ragd binary at $binary (run swift build)" >&2; exit 2; }
[ -x "$ragctl" ] || { echo "no ragctl binary at $ragctl (run swift build)" >&2; exit 2; }

units="ragd.socket ragd.service ragd-metrics.service ragd-metrics.timer"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for unit in $units; do
  sed -e "s#^ExecStart=/usr/local/bin/ragd #ExecStart=$binary #" -e "s#^ExecStart=/usr/local/bin/ragctl #ExecStart=$ragctl #" \
    "$root/systemd/$unit" > "$work/$unit"
done
grep -q "^ExecStart=$binary " "$work/ragd.service" || { echo "ExecStart of ragd.service is not /usr/local/bin/ragd" >&2; exit 1; }
grep -q "^ExecStart=$ragctl " "$work/ragd-metrics.service" || { echo "ExecStart of ragd-metrics.service is not /usr/local/bin/ragctl" >&2; exit 1; }

echo "== systemd-analyze verify $units"
if ! complaints=$(cd "$work" && systemd-analyze verify $units 2>&1) || [ -n "$complaints" ]; then
  echo "$complaints"
  echo "verify failed" >&2
  exit 1
fi
echo "ok"

for service in ragd.service ragd-metrics.service; do
  echo "== systemd-analyze security --offline=true $service"
  report=$(systemd-analyze security --offline=true --no-pager "$work/$service" 2>&1)
  echo "$report" | grep -v "✓" || true
  level=$(echo "$report" | sed -n "s/.*Overall exposure level for $service: \([0-9.]*\).*/\1/p")
  [ -n "$level" ] || { echo "no exposure level in the report" >&2; exit 1; }
  if ! awk -v level="$level" -v max="$max" 'BEGIN { exit !(level <= max) }'; then
    echo "exposure of $service $level is above $max" >&2
    exit 1
  fi
done

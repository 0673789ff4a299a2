#!/bin/bash
# Checks systemd/ragd.service and systemd/ragd.socket: `systemd-analyze verify` must pass without a word, and the
# service's `systemd-analyze security` exposure must not exceed MAX (default 2.0).
# verify wants ExecStart's binary to exist, so the units are checked as copies whose ExecStart is RAGD_BINARY
# (default: .build/debug/ragd, built by `swift build`).
#   usage: bench/check-units.sh [RAGD_BINARY] [MAX]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
binary=${1:-$root/.build/debug/ragd}
max=${2:-2.0}
[ -x "$binary" ] || { echo "no ragd binary at $binary (run swift build)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for unit in ragd.service ragd.socket; do
  sed "s#^ExecStart=/usr/local/bin/ragd #ExecStart=$binary #" "$root/systemd/$unit" > "$work/$unit"
done
grep -q "^ExecStart=$binary " "$work/ragd.service" || { echo "ExecStart of ragd.service is not /usr/local/bin/ragd" >&2; exit 1; }

echo "== systemd-analyze verify ragd.socket ragd.service"
if ! complaints=$(systemd-analyze verify "$work/ragd.socket" "$work/ragd.service" 2>&1) || [ -n "$complaints" ]; then
  echo "$complaints"
  echo "verify failed" >&2
  exit 1
fi
echo "ok"

echo "== systemd-analyze security --offline=true ragd.service"
report=$(systemd-analyze security --offline=true --no-pager "$work/ragd.service" 2>&1)
echo "$report" | grep -v "✓" || true
level=$(echo "$report" | sed -n 's/.*Overall exposure level for ragd.service: \([0-9.]*\).*/\1/p')
[ -n "$level" ] || { echo "no exposure level in the report" >&2; exit 1; }
if ! awk -v level="$level" -v max="$max" 'BEGIN { exit !(level <= max) }'; then
  echo "exposure $level is above $max" >&2
  exit 1
fi

#!/usr/bin/env bash
# The test suite under one sanitizer: scripts/test-sanitize.sh address|thread
#
# Builds into .build-asan or .build-tsan, runs every test with RAGD_BINARY pointing at the sanitized ragd (so the
# daemons the integration tests start are checked too) and fails if any process wrote a sanitizer report;
# reports are kept in .build-<asan|tsan>/reports. Suppressions (scripts/sanitizers/) cover toolchain and C
# library code only.
set -uo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
kind=${1:?usage: $0 address|thread}
case $kind in
  address) dir=.build-asan ;;
  thread) dir=.build-tsan ;;
  *) echo "usage: $0 address|thread" >&2; exit 2 ;;
esac
# Left out under sanitizers: after an inotify overflow it waits (sync, 60 s) for the real model to embed
# about 8,700 chunks, which takes 100 s or more in a sanitized debug build on 2 shared cores.
skip='overflowTriggersReconciliation'

start=$(date +%s)
$SWIFT build --build-tests --sanitize="$kind" --scratch-path "$dir" || exit 1
built=$(date +%s)
reports=$PWD/$dir/reports
rm -rf "$reports"; mkdir -p "$reports"
supp=$PWD/scripts/sanitizers
if [ "$kind" = address ]; then
  export ASAN_OPTIONS=detect_leaks=1:log_path=$reports/asan
  export LSAN_OPTIONS=suppressions=$supp/lsan.supp:print_suppressions=0
else
  export TSAN_OPTIONS=halt_on_error=0:log_path=$reports/tsan:suppressions=$supp/tsan.supp:print_suppressions=0
fi
# Three passes: synchronous tests (the integration tests waiting on daemons, the model tests) hold the
# cooperative threads (2 on 2 cores) for minutes under a sanitizer, which starves the async watchdog tests past
# their one-minute limits.
status=0
export RAGD_BINARY=$PWD/$dir/debug/ragd
run() { $SWIFT test --skip-build --disable-xctest --sanitize="$kind" --scratch-path "$dir" "$@" || status=$?; }
run --filter 'RagSystemdTests\.'
run --skip 'IntegrationTests\.|RagSystemdTests\.'
run --filter 'IntegrationTests\.' --skip "$skip"
end=$(date +%s)
if [ -n "$(ls -A "$reports")" ]; then
  echo "sanitizer reports ($kind):"
  for f in "$reports"/*; do echo "== $f"; cat "$f"; done
  status=1
fi
echo "test-sanitize $kind: status $status, build $((built - start)) s, tests $((end - built)) s (skipped: $skip)"
exit $status

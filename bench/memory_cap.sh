#!/bin/bash
# Runs dense-bench on an existing index inside a memory cgroup whose limit counts the page cache too, so the
# "RSS" figure cannot hide in LMDB's mapped file: everything the process touches is charged to the cgroup, and
# the kernel reclaims pages beyond the limit. Needs root and the cgroup v1 memory controller (or cgroup v2).
#
#   bench/memory_cap.sh --limit-mb 1536 [--runs 2] --dense-bench .build/release/dense-bench --index /tmp/ix1m [dense-bench args…]
#
# The page cache is dropped first (echo 3 > /proc/sys/vm/drop_caches): pages cached earlier stay charged to
# whoever read them, so without this the limit would not apply to them. Start-up is therefore cold.
set -euo pipefail
limit_mb=1536
runs=1
bench=.build/release/dense-bench
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --limit-mb) limit_mb=$2; shift 2 ;;
        --dense-bench) bench=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;   # runs after the first find the cgroup's page cache as the first left it
        *) args+=("$1"); shift ;;
    esac
done
name=ragd-bench-$$
if [ -d /sys/fs/cgroup/memory ]; then
    cg=/sys/fs/cgroup/memory/$name
    mkdir "$cg"
    echo $((limit_mb << 20)) > "$cg/memory.limit_in_bytes"
    # No swap here; with swap, cap memory+swap too.
    [ -f "$cg/memory.memsw.limit_in_bytes" ] && echo $((limit_mb << 20)) > "$cg/memory.memsw.limit_in_bytes" 2>/dev/null || true
    peak_file=$cg/memory.max_usage_in_bytes
    fail_file=$cg/memory.failcnt
else
    cg=/sys/fs/cgroup/$name
    mkdir "$cg"
    echo $((limit_mb << 20)) > "$cg/memory.max"
    peak_file=$cg/memory.peak
    fail_file=$cg/memory.events
fi
trap 'rmdir "$cg" 2>/dev/null || true' EXIT
sync
echo 3 > /proc/sys/vm/drop_caches
echo "cgroup $cg: limit $limit_mb MiB (anonymous memory and page cache); page cache dropped"
for run in $(seq 1 "$runs"); do
    echo "run $run: $ $bench ${args[*]}"
    bash -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' _ "$cg" "$bench" "${args[@]}"
done
echo "cgroup peak usage: $(( $(cat "$peak_file") >> 20 )) MiB of $limit_mb MiB; limit hits (failcnt/events): $(cat "$fail_file" | tr '\n' ' ')"

#!/usr/bin/env bash
# Sentence-encoder speed in a release build: chunks of 200 tokens per second in batches of 32, and the
# latency of embedding one short query, with 1 and with 2 OpenBLAS threads.
#   bench/embed_bench.sh [MODEL_FOLDER] [extra embed-bench options]
# OPENBLAS_CORETYPE, when set in the environment, pins OpenBLAS's kernels (the "blas" line says which);
# `Haswell` there halves the speed on AVX-512 machines.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MODEL="${1:-models/all-MiniLM-L6-v2}"
shift || true
[ -f "$MODEL/model.safetensors" ] || scripts/fetch-model.sh "$MODEL"
swift build -c release --product embed-bench
for threads in 1 2; do
    echo "--- OPENBLAS threads: $threads"
    .build/release/embed-bench "$MODEL" --tokens 200 --batch 32 --chunks 256 --threads "$threads" "$@"
done

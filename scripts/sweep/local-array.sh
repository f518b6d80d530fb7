#!/usr/bin/env bash
# Runs a sweep as N local shards at once, the way a job array would, then merges them:
#   scripts/sweep/local-array.sh N SPACE.toml WORKLOAD.toml OUT_DIR
set -euo pipefail
n=$1 space=$2 workload=$3 out=$4
systole=${SYSTOLE:-target/release/systole}
pids=()
for ((k = 0; k < n; k++)); do
    "$systole" sweep --space "$space" --workload "$workload" --out "$out" --shard "$k/$n" --jobs 1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
shards=()
for ((k = 0; k < n; k++)); do shards+=("$out/results-$k-of-$n.jsonl"); done
"$systole" sweep merge --space "$space" --out "$out" "${shards[@]}"

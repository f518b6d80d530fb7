#!/usr/bin/env bash
# Submits a sweep to Slurm: an array of N shard tasks (slurm.sbatch) and a merge job that
# runs once every shard has succeeded (--dependency=afterok) and checks each shard against
# the space (`systole sweep merge --space`); if a shard fails, the merge job is cancelled
# (--kill-on-invalid-dep) and the same command run again resumes every shard's file:
#
#   scripts/sweep/slurm-submit.sh 8 configs/spaces/edge.toml configs/workloads/mobilenetv2.toml sweep-out [sbatch options]
#
# Options after OUT_DIR go to both sbatch calls (e.g. --partition=p, --cpus-per-task=4 for
# the shards). The binary is $SYSTOLE, else `systole` on PATH, and must be reachable from the
# compute nodes at the same path.
set -euo pipefail
fail() {
    echo "slurm-submit.sh: $1" >&2
    exit 2
}
(($# >= 4)) || fail "usage: scripts/sweep/slurm-submit.sh N SPACE.toml WORKLOAD.toml OUT_DIR [sbatch options]"
n=$1 space=$2 workload=$3 out=$4
shift 4
[[ $n =~ ^[1-9][0-9]*$ ]] || fail "N = $n is not a shard count"
systole=${SYSTOLE:-$(command -v systole || true)}
[[ -n $systole && -x $systole ]] || fail "no systole binary: set SYSTOLE=/path/to/systole or put systole on PATH"
systole=$(realpath "$systole")
here=$(dirname "$(realpath "$0")")
array=$(sbatch --parsable --array="0-$((n - 1))" --export="ALL,SYSTOLE=$systole" "$@" "$here/slurm.sbatch" "$space" "$workload" "$out")
array=${array%%;*}
shards=()
for ((k = 0; k < n; k++)); do shards+=("$out/results-$k-of-$n.jsonl"); done
merge_command=$(printf '%q ' "$systole" sweep merge --space "$space" --out "$out" "${shards[@]}")
merge=$(sbatch --parsable --job-name=systole-merge --dependency="afterok:$array" --kill-on-invalid-dep=yes "$@" --wrap="$merge_command")
merge=${merge%%;*}
echo "submitted shard array $array ($n tasks) and merge job $merge (runs when every shard has succeeded) into $out/results.jsonl"
echo "if a shard fails, the merge job is cancelled: fix the cause and run this command again (each shard keeps the points it finished)"

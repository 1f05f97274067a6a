#!/usr/bin/env bash
# Data-parallel throughput on this machine: `braid train` as 1 rank x 2 threads against
# `mpirun -np 2` x 1 thread each, same data, seed and global batch, one epoch each, in
# alternating order (ABAB) so both see the same machine load. Prints the training rows/s of
# each run (the trainer's epoch line: steps only, validation excluded) and the 2-rank runs'
# communication time and bytes per step (rank 0's epoch line).
#
# Usage: scripts/bench_distributed.sh [rows (default 200000)] [batch (default 512)]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-200000}
batch=${2:-512}
braid=.build/release/braid
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$braid" generate --out "$work/data" --rows "$rows" --seed 11 --quiet
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
mpi=(mpirun --allow-run-as-root --oversubscribe -np 2 --bind-to none --mca btl self,vader,tcp
     --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo)
train=(train --config "$work/data/model.json" --train "$work/data/train.csv" --valid "$work/data/valid.csv"
       --epochs 1 --patience 0 --batch-size "$batch" --checkpoint-every 0 --seed 3 --quiet)
# build the training cache once, outside the timed runs
"$braid" "${train[@]}" --out "$work/warm" --threads 2 2>/dev/null
cache="$work/warm/cache"
echo "uptime: $(uptime)"
for round in 1 2; do
  for mode in "1x2" "2x1"; do
    out="$work/run-$mode-$round"
    mkdir -p "$out"
    cp -r "$cache" "$out/cache"
    if [ "$mode" = "1x2" ]; then
      log=$("$braid" "${train[@]}" --out "$out" --threads 2 2>&1)
    else
      log=$("${mpi[@]}" "$braid" "${train[@]}" --out "$out" --threads 1 --distributed 2>&1)
    fi
    rate=$(grep -o '[0-9]* rows/s' <<<"$log" | head -1)
    comm=$(grep -o 'communication .*' <<<"$log" || true)
    echo "round $round, $mode (ranks x threads): $rate ${comm:+; $comm}"
  done
done

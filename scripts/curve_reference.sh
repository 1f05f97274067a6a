#!/usr/bin/env bash
# The sequence-length cost curve of training, Braid beside the PyTorch reference, one run.
#   scripts/curve_reference.sh DIR [THREADS] [BATCH] [LENGTHS]
# DIR holds model.json and train.csv from `scripts/bench_data.py --full --max-length <max L>`.
# For each L (default 64 256 1024): DIR/model-L.json (max_length L), `braid bench train`
# (one JSON line: ex/s, peak RSS), then the reference's bench_ref.py (eager) under
# /usr/bin/time (its peak RSS, the whole process). Needs $BRAID_BIN (default
# .build/release/braid) and python3 with torch; $BRAID_REFERENCE is the reference folder.
set -euo pipefail
dir=${1:?usage: curve_reference.sh DIR [THREADS] [BATCH] [LENGTHS]}
threads=${2:-1}; batch=${3:-64}; lengths=${4:-"64 256 1024"}
here=$(cd "$(dirname "$0")/.." && pwd)
braid=${BRAID_BIN:-$here/.build/release/braid}
ref=${BRAID_REFERENCE:-$here/../shared/reference}
for L in $lengths; do
  python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["schema"]["sequence"]["max_length"]=int(sys.argv[2]); json.dump(c, open(sys.argv[3], "w"), indent=1)' \
    "$dir/model.json" "$L" "$dir/model-$L.json"
  echo "L=$L threads $threads batch $batch load $(cut -d' ' -f1-3 /proc/loadavg)"
  "$braid" bench train --config "$dir/model-$L.json" --data "$dir/train.csv" --threads "$threads" \
    --batch-size "$batch" --steps 6 --warmup 1 2>/dev/null | tail -1
  /usr/bin/time -f "reference peak RSS %M KiB, %e s" python3 "$ref/bench_ref.py" --config "$dir/model-$L.json" \
    --data "$dir/train.csv" --threads "$threads" --batch-size "$batch" --candidates 1 --warmup 1 --steps 6 --reps 3 \
    --compile off 2>&1 | tail -2
done

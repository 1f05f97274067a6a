#!/usr/bin/env bash
# The sequence-length cost curve of training, Braid beside the PyTorch reference, one run.
#   scripts/curve_reference.sh DIR [THREADS] [BATCH] [LENGTHS]
# DIR holds model.json and train.csv from `scripts/bench_data.py --full --max-length <max L>`.
# For each L (default 64 256 1024): DIR/model-L.json (max_length L), `braid bench train`
# (one JSON line: ex/s, peak RSS), then the reference's bench_ref.py (eager) under
# /usr/bin/time (its peak RSS, the whole process). Needs $BRAID_BIN (default
# .build/release/braid) and python3 with torch; $BRAID_REFERENCE is the reference folder.
# ROUNDS=N (default 1) repeats each L's pair N times, alternating Braid and the reference,
# and ends with one line per L: each round's ex/s and ratio, and the median ratio (on a
# noisy VM one pair can land anywhere in a +-25% band; the median of alternating pairs is
# the figure to quote).
set -euo pipefail
dir=${1:?usage: curve_reference.sh DIR [THREADS] [BATCH] [LENGTHS]}
threads=${2:-1}; batch=${3:-64}; lengths=${4:-"64 256 1024"}
here=$(cd "$(dirname "$0")/.." && pwd)
braid=${BRAID_BIN:-$here/.build/release/braid}
ref=${BRAID_REFERENCE:-$here/../shared/reference}
rounds=${ROUNDS:-1}
summary=()
for L in $lengths; do
  python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["schema"]["sequence"]["max_length"]=int(sys.argv[2]); json.dump(c, open(sys.argv[3], "w"), indent=1)' \
    "$dir/model.json" "$L" "$dir/model-$L.json"
  pairs=()
  for ((round = 1; round <= rounds; round++)); do
    echo "L=$L threads $threads batch $batch round $round/$rounds load $(cut -d' ' -f1-3 /proc/loadavg)"
    b=$("$braid" bench train --config "$dir/model-$L.json" --data "$dir/train.csv" --threads "$threads" \
      --batch-size "$batch" --steps 6 --warmup 1 2>/dev/null | tail -1)
    echo "$b"
    r=$(/usr/bin/time -f "reference peak RSS %M KiB, %e s" python3 "$ref/bench_ref.py" --config "$dir/model-$L.json" \
      --data "$dir/train.csv" --threads "$threads" --batch-size "$batch" --candidates 1 --warmup 1 --steps 6 --reps 3 \
      --compile off 2>&1 | tail -2)
    echo "$r"
    pairs+=("$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["ex_per_s_median_step"], json.loads(sys.argv[2].splitlines()[0])["train_eager"]["ex_per_s_median_step"])' "$b" "$r")")
  done
  summary+=("$(python3 - "$L" "${pairs[@]}" <<'PY'
import statistics, sys
L, pairs = sys.argv[1], [tuple(map(float, p.split())) for p in sys.argv[2:]]
ratios = [b / r for b, r in pairs]
rounds = ", ".join(f"{b:.1f}/{r:.1f}={b / r:.2f}x" for b, r in pairs)
print(f"L={L}: braid/reference ex/s per round {rounds}; median ratio {statistics.median(ratios):.2f}x")
PY
)")
done
printf '%s\n' "${summary[@]}"

#!/usr/bin/env bash
# Braid vs the PyTorch reference on the same config, data, batch size and threads.
#   scripts/compare_reference.sh CONFIG DATA [THREADS] [BATCH] [CANDIDATES]
# Runs `braid bench train`, `braid bench score` (1 user x CANDIDATES, the config's fusion,
# request-level broadcasting as the reference's user_index) and
# `bench_ref.py --compile off` back to back, then prints the ratios.
# Needs a release build in $BRAID_BIN (default .build-perf/release/braid) and
# python3 with torch. OPENBLAS_CORETYPE is left as the environment sets it.
set -euo pipefail
config=${1:?usage: compare_reference.sh CONFIG DATA [THREADS] [BATCH] [CANDIDATES]}
data=${2:?usage: compare_reference.sh CONFIG DATA [THREADS] [BATCH] [CANDIDATES]}
threads=${3:-2}; batch=${4:-512}; candidates=${5:-100}
here=$(cd "$(dirname "$0")/.." && pwd)
braid=${BRAID_BIN:-$here/.build-perf/release/braid}
ref=${BRAID_REFERENCE:-/work/shared/reference/bench_ref.py}
fusion=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"]["sequence"]["fusion"])' "$config")

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
train=$("$braid" bench train --config "$config" --data "$data" --threads "$threads" --batch-size "$batch")
score=$("$braid" bench score --config "$config" --data "$data" --threads "$threads" --fusion "$fusion" \
          --candidates "$candidates" --batch-users 0 --requests 100 --warmup 10 2>/dev/null | grep '"broadcast":true')
reference=$(python3 "$ref" --config "$config" --data "$data" --threads "$threads" --batch-size "$batch" \
              --candidates "$candidates" --compile off 2>/dev/null | tail -1)
echo "braid train: $train"
echo "braid score: $score"
echo "reference:   $reference"
python3 - "$train" "$score" "$reference" <<'PY'
import json, sys
t, s, r = (json.loads(a) for a in sys.argv[1:4])
print(f"train ex/s (median step): braid {t['ex_per_s_median_step']:,.0f}  reference {r['train_eager']['ex_per_s_median_step']:,.0f}"
      f"  ratio {t['ex_per_s_median_step'] / r['train_eager']['ex_per_s_median_step']:.2f}x (target >= 1.5x)")
print(f"train ex/s (mean):        braid {t['ex_per_s_mean']:,.0f}  reference {r['train_eager']['ex_per_s_mean']:,.0f}"
      f"  ratio {t['ex_per_s_mean'] / r['train_eager']['ex_per_s_mean']:.2f}x")
print(f"score p50 ms (1 user x {s['candidates_per_user']}, {s['fusion']}): braid {s['p50_ms']:.2f}  reference {r['infer_eager']['p50_ms']:.2f}"
      f"  ratio {s['p50_ms'] / r['infer_eager']['p50_ms']:.2f} (target <= 0.5)")
PY

#!/usr/bin/env bash
# Braid vs the PyTorch reference on the same config, data, batch size and threads.
#   scripts/compare_reference.sh CONFIG DATA [THREADS] [BATCH] [CANDIDATES]
# Runs `braid bench train`, `braid bench score` (1 user x CANDIDATES, request-level
# broadcasting as the reference's user_index) with the config's fusion and, when that is
# not late, again with `--fusion late`, then `bench_ref.py --compile off` (the config's
# fusion, eager) under a wrapper that records its peak RSS (ru_maxrss of the child: the
# whole run, training and scoring), back to back, and prints a table of the ratios.
# The raw JSON lines go to stderr.
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

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
score() {  # fusion -> the broadcast row of `braid bench score`
  "$braid" bench score --config "$config" --data "$data" --threads "$threads" --fusion "$1" \
    --candidates "$candidates" --batch-users 0 --requests 300 --warmup 20 2>/dev/null | grep '"broadcast":true'
}
train=$("$braid" bench train --config "$config" --data "$data" --threads "$threads" --batch-size "$batch")
score_cfg=$(score "$fusion")
score_late=$score_cfg
[ "$fusion" = late ] || score_late=$(score late)
reference=$(python3 - "$ref" --config "$config" --data "$data" --threads "$threads" --batch-size "$batch" \
              --candidates "$candidates" --compile off <<'PY'
import json, resource, subprocess, sys
run = subprocess.run([sys.executable] + sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
if run.returncode != 0:
    sys.exit(f"bench_ref.py failed ({run.returncode}):\n{run.stderr[-2000:]}")
r = json.loads(run.stdout.strip().splitlines()[-1])
r["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)  # KiB on Linux
print(json.dumps(r))
PY
)
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
{ echo "braid train: $train"; echo "braid score: $score_cfg"
  [ "$fusion" = late ] || echo "braid score: $score_late"; echo "reference:   $reference"; } >&2
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $load_start at start, $load_end at end"
echo "threads $threads, batch $batch, 1 user x $candidates candidates, config fusion $fusion, reference eager (--compile off)"
python3 - "$train" "$score_cfg" "$score_late" "$reference" <<'PY'
import json, sys
t, s, late, r = (json.loads(a) for a in sys.argv[1:5])
te, ie = r["train_eager"], r["infer_eager"]
rows = [
    ("train ex/s, median step", f"{t['ex_per_s_median_step']:,.0f}", f"{te['ex_per_s_median_step']:,.0f}",
     f"{t['ex_per_s_median_step'] / te['ex_per_s_median_step']:.2f}x", ">= 1.5x"),
    ("train ex/s, mean", f"{t['ex_per_s_mean']:,.0f}", f"{te['ex_per_s_mean']:,.0f}",
     f"{t['ex_per_s_mean'] / te['ex_per_s_mean']:.2f}x", ""),
    ("peak RSS MiB (braid train; ref train+score)", f"{t['peak_rss_mb']:,.0f}", f"{r['peak_rss_mb']:,.0f}",
     f"{t['peak_rss_mb'] / r['peak_rss_mb']:.2f}", "<= 1"),
    (f"score p50 ms, {s['fusion']} vs ref {r['fusion']}", f"{s['p50_ms']:.2f}", f"{ie['p50_ms']:.2f}",
     f"{s['p50_ms'] / ie['p50_ms']:.2f}", "<= 0.5"),
]
if s['fusion'] != 'late':
    rows.append((f"score p50 ms, late vs ref {r['fusion']}", f"{late['p50_ms']:.2f}", f"{ie['p50_ms']:.2f}",
                 f"{ie['p50_ms'] / late['p50_ms']:.1f}x faster", ">= 10x faster"))
head = ("", "braid", "reference", "ratio", "target")
w = [max(len(row[i]) for row in rows + [head]) for i in range(5)]
for row in [head] + rows:
    print(f"{row[0]:<{w[0]}}  {row[1]:>{w[1]}}  {row[2]:>{w[2]}}  {row[3]:>{w[3]}}  {row[4]}")
PY

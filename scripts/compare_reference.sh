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
# ROUNDS=N (default 1) repeats the whole sequence N times, Braid and the reference
# alternating; the table then gives the median of each figure and of each round's ratio
# (on a noisy VM one round can land anywhere in a +-25% band), and one line per round.
set -euo pipefail
config=${1:?usage: compare_reference.sh CONFIG DATA [THREADS] [BATCH] [CANDIDATES]}
data=${2:?usage: compare_reference.sh CONFIG DATA [THREADS] [BATCH] [CANDIDATES]}
threads=${3:-2}; batch=${4:-512}; candidates=${5:-100}
here=$(cd "$(dirname "$0")/.." && pwd)
braid=${BRAID_BIN:-$here/.build-perf/release/braid}
ref=${BRAID_REFERENCE:-/work/shared/reference/bench_ref.py}
fusion=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"]["sequence"]["fusion"])' "$config")

rounds=${ROUNDS:-1}
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
score() {  # fusion -> the broadcast row of `braid bench score`
  "$braid" bench score --config "$config" --data "$data" --threads "$threads" --fusion "$1" \
    --candidates "$candidates" --batch-users 0 --requests 300 --warmup 20 2>/dev/null | grep '"broadcast":true'
}
results=()
for ((round = 1; round <= rounds; round++)); do
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
  { echo "round $round braid train: $train"; echo "round $round braid score: $score_cfg"
    [ "$fusion" = late ] || echo "round $round braid score: $score_late"; echo "round $round reference:   $reference"; } >&2
  results+=("$train" "$score_cfg" "$score_late" "$reference")
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $load_start at start, $load_end at end"
echo "threads $threads, batch $batch, 1 user x $candidates candidates, config fusion $fusion, reference eager (--compile off), $rounds round(s)"
python3 - "${results[@]}" <<'PY'
import json, statistics, sys
values = [json.loads(a) for a in sys.argv[1:]]
runs = [values[i:i + 4] for i in range(0, len(values), 4)]  # (train, score, late score, reference) per round
med = statistics.median
def figure(f):  # per round: (braid, reference) -> medians and the median of the per-round ratios
    pairs = [f(*run) for run in runs]
    return med(b for b, _ in pairs), med(r for _, r in pairs), med(b / r for b, r in pairs)
train = figure(lambda t, s, lt, r: (t['ex_per_s_median_step'], r['train_eager']['ex_per_s_median_step']))
mean = figure(lambda t, s, lt, r: (t['ex_per_s_mean'], r['train_eager']['ex_per_s_mean']))
rss = figure(lambda t, s, lt, r: (t['peak_rss_mb'], r['peak_rss_mb']))
score = figure(lambda t, s, lt, r: (s['p50_ms'], r['infer_eager']['p50_ms']))
late = figure(lambda t, s, lt, r: (lt['p50_ms'], r['infer_eager']['p50_ms']))
fusion, ref_fusion = runs[0][1]['fusion'], runs[0][3]['fusion']
rows = [
    ("train ex/s, median step", f"{train[0]:,.0f}", f"{train[1]:,.0f}", f"{train[2]:.2f}x", ">= 3x (#18)"),
    ("train ex/s, mean", f"{mean[0]:,.0f}", f"{mean[1]:,.0f}", f"{mean[2]:.2f}x", ""),
    ("peak RSS MiB (braid train; ref train+score)", f"{rss[0]:,.0f}", f"{rss[1]:,.0f}", f"{rss[2]:.2f}", "<= 1"),
    (f"score p50 ms, {fusion} vs ref {ref_fusion}", f"{score[0]:.2f}", f"{score[1]:.2f}", f"{score[2]:.2f}", "<= 0.4 (#18)"),
]
if fusion != 'late':
    rows.append((f"score p50 ms, late vs ref {ref_fusion}", f"{late[0]:.2f}", f"{late[1]:.2f}", f"{1 / late[2]:.1f}x faster", ">= 10x faster"))
head = ("", "braid", "reference", "ratio", "target")
w = [max(len(row[i]) for row in rows + [head]) for i in range(5)]
for row in [head] + rows:
    print(f"{row[0]:<{w[0]}}  {row[1]:>{w[1]}}  {row[2]:>{w[2]}}  {row[3]:>{w[3]}}  {row[4]}")
if len(runs) > 1:
    for i, (t, s, _, r) in enumerate(runs, 1):
        print(f"round {i}: train {t['ex_per_s_median_step']:,.0f} / {r['train_eager']['ex_per_s_median_step']:,.0f} = "
              f"{t['ex_per_s_median_step'] / r['train_eager']['ex_per_s_median_step']:.2f}x; "
              f"score p50 {s['p50_ms']:.2f} / {r['infer_eager']['p50_ms']:.2f} ms = {s['p50_ms'] / r['infer_eager']['p50_ms']:.2f}")
PY

"""The sequence-length cost curve of Braid beside the PyTorch reference, one run.

    python3 scripts/compare_curve.py --config CONFIG --data DATA [--lengths 64,256,1024]
        [--threads 2] [--batch 512] [--candidates 1000] [--ref-max-length 1024] [--ref-score-max 256]

For each max_length L (CONFIG with schema.sequence.max_length = L; DATA's sequences are
truncated to L, so give DATA sequences of at least the largest L, e.g. from
`scripts/bench_data.py --full`): `braid bench train` (ex/s median step, peak RSS),
`braid bench score` (1 user x CANDIDATES p50, every fusion, with and without broadcasting)
and the reference's `bench_ref.py` functions (eager, no torch.compile): training ex/s and peak
RSS (a fresh process per L: ru_maxrss) for L <= --ref-max-length, and scoring p50 per fusion
for L <= --ref-score-max (its early fusion at 1 x 1000 and L = 1024 runs the Transformer over
a million tokens per request). Prints a markdown table; raw JSON goes to stderr.
Braid: $BRAID_BIN (default .build-rel/release/braid). Reference: $BRAID_REFERENCE
(default /work/shared/reference). OPENBLAS_CORETYPE is left as the environment sets it.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.environ.get("BRAID_REFERENCE", "/work/shared/reference")
BRAID = os.environ.get("BRAID_BIN", os.path.join(HERE, "..", ".build-rel", "release", "braid"))
FUSIONS = ["early", "late", "append"]


def ref_child(a):
    """In a fresh process: the reference's training or scoring figure (one JSON line)."""
    sys.path.insert(0, REF)
    import numpy as np
    import torch
    import bench_ref
    import braid_ref as br
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    config = json.load(open(a.config, encoding="utf-8"))
    if a.child == "score":
        config["model"]["sequence"]["fusion"] = a.fusion
    rows = br.read_csv(a.data)
    config["dense_stats"] = br.fit_dense_stats(rows, br.Schema(config["schema"]))
    data = br.encode(rows, config)
    model = br.BraidModel(config, sparse=True)
    br.init_weights(model, 0)
    out = {"max_length": config["schema"]["sequence"]["max_length"], "fusion": config["model"]["sequence"]["fusion"]}
    if a.child == "train":
        n = len(data) // a.batch
        perm = torch.randperm(len(data))
        batches = [data.select(perm[i * a.batch:(i + 1) * a.batch]) for i in range(n)]
        out.update(bench_ref.bench_train(model, model, batches, a.warmup, a.steps))
    else:
        rng = np.random.default_rng(0)
        reqs = [br.request_batch(data, br.Schema(config["schema"]), int(u), rng.choice(len(data), a.candidates))
                for u in rng.choice(len(data), 4)]
        model.eval()
        out.update(bench_ref.bench_infer(model, reqs, 2, a.reps))
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out))


def run_json(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    for x in lines:
        print(json.dumps(x), file=sys.stderr)
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--lengths", default="64,256,1024")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--candidates", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--ref-max-length", type=int, default=1024, help="largest L the reference trains at")
    ap.add_argument("--ref-score-max", type=int, default=256, help="largest L the reference scores at")
    ap.add_argument("--child", choices=["train", "score"], help=argparse.SUPPRESS)
    ap.add_argument("--fusion", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return ref_child(a)
    base = json.load(open(a.config, encoding="utf-8"))
    tmp = tempfile.mkdtemp(prefix="braid-curve-")
    load0 = open("/proc/loadavg").read().split()[:3]
    table = []
    for L in [int(x) for x in a.lengths.split(",")]:
        cfg = json.loads(json.dumps(base))
        cfg["schema"]["sequence"]["max_length"] = L
        path = os.path.join(tmp, f"model_{L}.json")
        json.dump(cfg, open(path, "w"), indent=1)
        common = ["--config", path, "--data", a.data, "--threads", str(a.threads)]
        train = run_json([BRAID, "bench", "train", *common, "--batch-size", str(a.batch), "--steps", str(a.steps),
                          "--warmup", str(a.warmup)])[0]
        score = run_json([BRAID, "bench", "score", *common, "--candidates", str(a.candidates), "--batch-users", "0",
                          "--requests", str(a.requests), "--warmup", "2"])
        child = [sys.executable, os.path.abspath(__file__), *common, "--batch", str(a.batch), "--steps", str(a.steps),
                 "--warmup", str(a.warmup), "--candidates", str(a.candidates), "--reps", str(a.reps)]
        ref_train = run_json(child + ["--child", "train"])[0] if L <= a.ref_max_length else None
        row = {"L": L, "train": train, "score": score, "ref_train": ref_train, "ref_score": {}}
        if L <= a.ref_score_max:
            for f in FUSIONS:
                row["ref_score"][f] = run_json(child + ["--child", "score", "--fusion", f])[0]
        table.append(row)
    load1 = open("/proc/loadavg").read().split()[:3]
    print(f"machine: {os.cpu_count()} cores, load {' '.join(load0)} at start, {' '.join(load1)} at end; "
          f"threads {a.threads}, batch {a.batch}, 1 user x {a.candidates}, reference eager; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    fmt = lambda x, spec=",.0f": "" if x is None else format(x, spec)
    print("| L | train ex/s braid | ref | ratio | peak RSS MiB braid | ref | "
          + " | ".join(f"{f} p50 ms bcast / no | ref" for f in FUSIONS) + " |")
    print("| ---: " * (6 + 2 * len(FUSIONS)) + "|")
    for r in table:
        t, rt = r["train"], r["ref_train"]
        cells = [str(r["L"]), fmt(t["ex_per_s_median_step"]), fmt(rt and rt["ex_per_s_median_step"]),
                 fmt(rt and t["ex_per_s_median_step"] / rt["ex_per_s_median_step"], ".2f") + ("x" if rt else ""),
                 fmt(t["peak_rss_mb"]), fmt(rt and rt["peak_rss_mb"])]
        for f in FUSIONS:
            by = {s["broadcast"]: s["p50_ms"] for s in r["score"] if s["fusion"] == f}
            cells.append(f"{by.get(True, float('nan')):.2f} / {by.get(False, float('nan')):.2f}")
            rs = r["ref_score"].get(f)
            cells.append(fmt(rs and rs["p50_ms"], ".2f"))
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

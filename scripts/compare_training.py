#!/usr/bin/env python3
"""Braid vs the PyTorch reference trainer on the same data, config and epochs (needs torch).

    python3 scripts/compare_training.py --data DIR [--epochs 3] [--seeds 0,1,2] [--threads 2]
        [--separate] [--out DIR] [--braid .build/release/braid]

DIR holds train.csv, valid.csv, test.csv and model.json (`braid generate --out DIR`).
For every seed, trains the unified model (or, with --separate, one model per surface)
with `braid train` and with `../shared/reference/train_ref.py train`, both with the same
config, epochs, batch size 512, learning rates (Adam 1e-3, sparse Adagrad 0.02), seed
and threads, Braid without early stopping (`--patience 0`, as the reference has none;
Braid still keeps the epoch with the lowest validation log loss, the reference the
last). Then scores test.csv with `braid eval --json` and `train_ref.py eval --json`.

Prints one table per seed and, with several seeds, their mean: test AUC per surface
and task for Braid, the reference and the oracle (the p_<task> columns), and
reference - Braid. One seed's final AUC moves by about +-0.005 from epoch to epoch at
a constant learning rate, so the verdict is on the mean over the seeds: exits 1 if the
reference's mean AUC is higher than Braid's by more than --margin (0.005) on any
surface and task. Each run's wall time is printed; both run on the same machine back to back.
"""
import argparse
import json
import os
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))


def run(cmd, log):
    """Runs cmd with stderr to log; returns the wall seconds. Fails loudly with the log's tail."""
    start = time.time()
    with open(log, "w") as fh:
        result = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        with open(log) as fh:
            tail = fh.read()[-2000:]
        sys.exit(f"compare_training: {' '.join(cmd[:3])} ... failed (exit {result.returncode}); "
                 f"log {log}:\n{tail}")
    return time.time() - start


def table(rows, braid, ref):
    """Prints AUC / log loss rows of per-seed results; returns the largest reference - Braid mean AUC gap."""
    header = f"{'surface / task':<22}{'rows':>8}{'braid AUC':>11}{'ref AUC':>9}{'ref-braid':>11}{'oracle':>8}" \
             f"{'braid LL':>10}{'ref LL':>9}"
    print(header)
    print("-" * len(header))
    worst = None
    for key in rows:
        b = [run[key] for run in braid]
        r = [run[key] for run in ref]
        auc_b = sum(m["auc"] for m in b) / len(b)
        auc_r = sum(m["auc"] for m in r) / len(r)
        gap = auc_r - auc_b
        worst = gap if worst is None else max(worst, gap)
        oracle = f"{b[0]['oracle_auc']:.4f}" if b[0].get("oracle_auc") is not None else "-"
        ll_b = sum(m["logloss"] for m in b) / len(b)
        ll_r = sum(m["logloss"] for m in r) / len(r)
        print(f"{key:<22}{b[0]['count']:>8}{auc_b:>11.4f}{auc_r:>9.4f}{gap:>+11.4f}{oracle:>8}{ll_b:>10.4f}{ll_r:>9.4f}")
    print()
    return worst


def flatten(report):
    """{'surface / task': metrics} of an eval --json report, tasks without an AUC left out."""
    out = {}
    for surface, tasks in report["surfaces"].items():
        for task, m in tasks.items():
            if m["auc"] is not None:
                out[f"{surface} / {task}"] = m
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder with train/valid/test.csv and model.json")
    ap.add_argument("--config", help="model.json (default: DATA/model.json)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", default="0", help="comma-separated seeds; the verdict is on their mean")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--separate", action="store_true", help="compare the per-surface baselines instead")
    ap.add_argument("--out", default="compare-training", help="folder for all runs and logs")
    ap.add_argument("--braid", default=os.path.join(here, "..", ".build", "release", "braid"))
    ap.add_argument("--reference", default=os.path.join(here, "..", "..", "shared", "reference"))
    ap.add_argument("--margin", type=float, default=0.005)
    a = ap.parse_args()
    try:
        seeds = [int(x) for x in a.seeds.split(",") if x.strip()]
    except ValueError:
        sys.exit(f"compare_training: --seeds {a.seeds!r} is not a comma-separated list of integers, e.g. 0,1,2")
    if not seeds:
        sys.exit("compare_training: --seeds is empty; pass at least one seed, e.g. --seeds 0")

    config = a.config or os.path.join(a.data, "model.json")
    split = {name: os.path.join(a.data, f"{name}.csv") for name in ("train", "valid", "test")}
    for path in [config, *split.values()]:
        if not os.path.exists(path):
            sys.exit(f"compare_training: {path} not found; expected the output of `braid generate --out {a.data}`")
    if os.path.exists(a.out):
        sys.exit(f"compare_training: {a.out} exists; pass a new --out folder (runs are never overwritten)")
    os.makedirs(a.out)
    train_ref = os.path.join(a.reference, "train_ref.py")
    kind = "separate" if a.separate else "unified"

    braid_runs, ref_runs, seconds = [], [], [0.0, 0.0]
    for seed in seeds:
        out = os.path.join(a.out, f"seed-{seed}")
        os.makedirs(out)
        common = ["--epochs", str(a.epochs), "--batch-size", "512", "--lr", "0.001", "--seed", str(seed),
                  "--threads", str(a.threads)] + (["--separate"] if a.separate else [])
        braid_run = os.path.join(out, "braid")
        braid_seconds = run([a.braid, "train", "--config", config, "--train", split["train"], "--valid",
                             split["valid"], "--out", braid_run, "--emb-lr", "0.02", "--patience", "0", "--quiet",
                             *common], os.path.join(out, "braid-train.log"))
        reference_model = os.path.join(out, "reference")
        reference_seconds = run([sys.executable, train_ref, "train", "--config", config, "--train", split["train"],
                                 "--valid", split["valid"], "--out", reference_model, "--emb-lr", "0.02", *common],
                                os.path.join(out, "reference-train.log"))
        braid_json, reference_json = os.path.join(out, "braid-test.json"), os.path.join(out, "reference-test.json")
        with open(braid_json, "w") as fh:
            subprocess.run([a.braid, "eval", "--model", os.path.join(braid_run, "model"), "--data", split["test"],
                            "--json"], stdout=fh, check=True)
        run([sys.executable, train_ref, "eval", "--model", reference_model, "--test", split["test"],
             "--json", reference_json], os.path.join(out, "reference-eval.log"))
        with open(braid_json) as fh:
            braid_runs.append(flatten(json.load(fh)))
        with open(reference_json) as fh:
            ref_runs.append(flatten(json.load(fh)))
        seconds[0] += braid_seconds
        seconds[1] += reference_seconds
        print(f"{kind} models, {a.epochs} epochs, batch 512, seed {seed}, {a.threads} threads, data {a.data}")
        print(f"wall time: braid {braid_seconds:.0f} s, reference {reference_seconds:.0f} s")
        print()
        table([k for k in braid_runs[-1] if k in ref_runs[-1]], braid_runs[-1:], ref_runs[-1:])
        sys.stdout.flush()

    keys = [k for k in braid_runs[0] if all(k in r for r in braid_runs + ref_runs)]
    if len(seeds) > 1:
        print(f"mean over seeds {','.join(map(str, seeds))}; wall time in all: braid {seconds[0]:.0f} s, "
              f"reference {seconds[1]:.0f} s")
        print()
    worst = table(keys, braid_runs, ref_runs) if len(seeds) > 1 else \
        max(ref_runs[0][k]["auc"] - braid_runs[0][k]["auc"] for k in keys)
    what = "mean " if len(seeds) > 1 else ""
    verdict = "ok" if worst <= a.margin else "FAIL"
    print(f"largest reference - braid {what}AUC: {worst:+.4f} (bar: <= {a.margin}): {verdict}")
    sys.exit(0 if verdict == "ok" else 1)


if __name__ == "__main__":
    main()

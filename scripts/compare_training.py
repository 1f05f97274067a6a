#!/usr/bin/env python3
"""Braid vs the PyTorch reference trainer on the same data, config and epochs (needs torch).

    python3 scripts/compare_training.py --data DIR [--epochs 3] [--seed 0] [--threads 2]
        [--separate] [--out DIR] [--braid .build/release/braid]

DIR holds train.csv, valid.csv, test.csv and model.json (`braid generate --out DIR`).
Trains the unified model (or, with --separate, one model per surface) with
`braid train` and with `../shared/reference/train_ref.py train`, both with the same
config, epochs, batch size 512, learning rates (Adam 1e-3, sparse Adagrad 0.02), seed
and threads, Braid without early stopping (`--patience 0`, as the reference has none).
Then scores test.csv with `braid eval --json` and `train_ref.py eval --json` and prints
one table: test AUC per surface and task for Braid, the reference and the oracle
(the p_<task> columns), and reference - Braid. Exits 1 if the reference's AUC is
higher than Braid's by more than --margin (0.005) on any surface and task.
Each run's wall time goes beside it; both run on the same machine back to back.
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder with train/valid/test.csv and model.json")
    ap.add_argument("--config", help="model.json (default: DATA/model.json)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--separate", action="store_true", help="compare the per-surface baselines instead")
    ap.add_argument("--out", default="compare-training", help="folder for both runs and logs")
    ap.add_argument("--braid", default=os.path.join(here, "..", ".build", "release", "braid"))
    ap.add_argument("--reference", default=os.path.join(here, "..", "..", "shared", "reference"))
    ap.add_argument("--margin", type=float, default=0.005)
    a = ap.parse_args()

    config = a.config or os.path.join(a.data, "model.json")
    split = {name: os.path.join(a.data, f"{name}.csv") for name in ("train", "valid", "test")}
    for path in [config, *split.values()]:
        if not os.path.exists(path):
            sys.exit(f"compare_training: {path} not found; expected the output of `braid generate --out {a.data}`")
    if os.path.exists(a.out):
        sys.exit(f"compare_training: {a.out} exists; pass a new --out folder (runs are never overwritten)")
    os.makedirs(a.out)
    common = ["--epochs", str(a.epochs), "--batch-size", "512", "--lr", "0.001", "--seed", str(a.seed),
              "--threads", str(a.threads)] + (["--separate"] if a.separate else [])
    train_ref = os.path.join(a.reference, "train_ref.py")

    braid_run = os.path.join(a.out, "braid")
    braid_seconds = run([a.braid, "train", "--config", config, "--train", split["train"], "--valid", split["valid"],
                         "--out", braid_run, "--emb-lr", "0.02", "--patience", "0", "--quiet", *common],
                        os.path.join(a.out, "braid-train.log"))
    reference_model = os.path.join(a.out, "reference")
    reference_seconds = run([sys.executable, train_ref, "train", "--config", config, "--train", split["train"],
                             "--valid", split["valid"], "--out", reference_model, "--emb-lr", "0.02", *common],
                            os.path.join(a.out, "reference-train.log"))

    braid_json, reference_json = os.path.join(a.out, "braid-test.json"), os.path.join(a.out, "reference-test.json")
    with open(braid_json, "w") as fh:
        subprocess.run([a.braid, "eval", "--model", os.path.join(braid_run, "model"), "--data", split["test"],
                        "--json"], stdout=fh, check=True)
    run([sys.executable, train_ref, "eval", "--model", reference_model, "--test", split["test"],
         "--json", reference_json], os.path.join(a.out, "reference-eval.log"))
    with open(braid_json) as fh:
        ours = json.load(fh)
    with open(reference_json) as fh:
        theirs = json.load(fh)

    kind = "separate" if a.separate else "unified"
    print(f"{kind} models, {a.epochs} epochs, batch 512, seed {a.seed}, {a.threads} threads, data {a.data}")
    print(f"wall time: braid {braid_seconds:.0f} s, reference {reference_seconds:.0f} s")
    print()
    header = f"{'surface / task':<22}{'rows':>8}{'braid AUC':>11}{'ref AUC':>9}{'ref-braid':>11}{'oracle':>8}" \
             f"{'braid LL':>10}{'ref LL':>9}"
    print(header)
    print("-" * len(header))
    worst = None
    for surface, tasks in ours["surfaces"].items():
        for task, m in tasks.items():
            r = theirs["surfaces"][surface][task]
            if m["auc"] is None or r["auc"] is None:
                continue
            gap = r["auc"] - m["auc"]
            worst = gap if worst is None else max(worst, gap)
            oracle = f"{m['oracle_auc']:.4f}" if m.get("oracle_auc") is not None else "-"
            print(f"{surface + ' / ' + task:<22}{m['count']:>8}{m['auc']:>11.4f}{r['auc']:>9.4f}{gap:>+11.4f}"
                  f"{oracle:>8}{m['logloss']:>10.4f}{r['logloss']:>9.4f}")
    print()
    verdict = "ok" if worst is not None and worst <= a.margin else "FAIL"
    print(f"largest reference - braid AUC: {worst:+.4f} (bar: <= {a.margin}): {verdict}")
    sys.exit(0 if verdict == "ok" else 1)


if __name__ == "__main__":
    main()

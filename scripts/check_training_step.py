#!/usr/bin/env python3
"""Checks one `braid train` step against the PyTorch reference at full scale (needs torch, safetensors).

    python3 scripts/check_training_step.py --config model.json --train train.csv [--step 6]
        [--batch-size 512] [--seed 0] [--braid .build/release/braid]

The parity fixtures check every gradient on a few rows; this checks a real step of a
real run. It runs `braid train --checkpoint-every 1` until the checkpoints of steps
K-1 and K exist and stops it. Braid keeps Adam's moments and the Adagrad accumulators
in its checkpoints, so the gradient of step K comes back exactly:
  dense parameters: g = (m_K - 0.9 m_{K-1}) / 0.1;
  embedding rows:   g = -(W_K - W_{K-1}) (sqrt(G_K) + 1e-10) / emb_lr.
The reference then loads the step K-1 weights, encodes the same rows (Braid's epoch-1
permutation, recomputed here as Sources/Data/BatchPlan.swift documents it) and runs
`loss.backward()`. Prints the largest relative
difference per parameter (worst first) and exits 1 above --tolerance (1e-4).
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from safetensors.numpy import load_file

here = os.path.dirname(os.path.abspath(__file__))
MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


class SplitMix64:
    """Sources/Random/SplitMix64.swift: next() and Lemire's next(below:)."""

    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + GOLDEN) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, bound):
        product = self.next() * bound
        if product & MASK < bound:
            threshold = ((1 << 64) - bound) % bound
            while product & MASK < threshold:
                product = self.next() * bound
        return product >> 64


def permutation(n, seed, epoch):
    """shuffledBatches' permutation of 0..<n (before each batch is grouped by surface)."""
    mixer = SplitMix64(seed ^ ((GOLDEN * (epoch + 1)) & MASK))
    generator = SplitMix64(mixer.next())
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = generator.below(i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--valid", help="validation CSV (default: --train; only needed to start braid train)")
    ap.add_argument("--step", type=int, default=6, help="the step to check (>= 2, within epoch 1)")
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--emb-lr", type=float, default=0.02)
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--braid", default=os.path.join(here, "..", ".build", "release", "braid"))
    ap.add_argument("--reference", default=os.path.join(here, "..", "..", "shared", "reference"))
    a = ap.parse_args()
    if a.step < 2:
        sys.exit("check_training_step: --step must be at least 2 (step 1 starts from moments of zero)")
    sys.path.insert(0, a.reference)
    import braid_ref as br

    work = tempfile.mkdtemp(prefix="braid-step-")
    run = os.path.join(work, "run")
    checkpoints = os.path.join(run, "checkpoints")
    before, after = (os.path.join(checkpoints, f"step-{k:09d}") for k in (a.step - 1, a.step))
    log = open(os.path.join(work, "train.log"), "w")
    proc = subprocess.Popen([a.braid, "train", "--config", a.config, "--train", a.train, "--valid", a.valid or a.train,
                             "--out", run, "--epochs", "1", "--batch-size", str(a.batch_size), "--lr", "0.001",
                             "--emb-lr", str(a.emb_lr), "--seed", str(a.seed), "--checkpoint-every", "1",
                             "--patience", "0", "--quiet"], stdout=log, stderr=subprocess.STDOUT)
    while not os.path.exists(after + ".state.safetensors"):
        if proc.poll() is not None:
            sys.exit(f"check_training_step: braid train ended before step {a.step}; see {log.name}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    log.close()
    if not os.path.exists(before + ".state.safetensors"):
        sys.exit(f"check_training_step: no checkpoint of step {a.step - 1} in {checkpoints}")

    model, config = br.load_model_dir(before, sparse=True)
    rows = br.read_csv(a.train)
    order = permutation(len(rows.rows), a.seed, 1)
    picked = order[(a.step - 1) * a.batch_size:a.step * a.batch_size]
    batch_rows = br.Rows(rows.header, [rows.rows[i] for i in picked], rows.path)
    b = br.encode(batch_rows, config)
    model.train()
    loss = br.loss_fn(model, model(b), b)
    loss.backward()

    state_before, state_after = load_file(before + ".state.safetensors"), load_file(after + ".state.safetensors")
    weights_before, weights_after = load_file(before + "/weights.safetensors"), load_file(after + "/weights.safetensors")
    gradient = (state_after["adam.m"].astype(np.float64) - 0.9 * state_before["adam.m"]) / 0.1
    rows_out, offset = [], 0
    for name, p in model.named_parameters():  # the reference's order is Braid's parameter layout
        ref = p.grad.to_dense().double().numpy() if p.grad is not None else np.zeros(tuple(p.shape))
        if name.startswith("embeddings."):
            table = name.split(".")[1]
            accumulator = state_after[f"adagrad.{table}"].astype(np.float64)
            ours = -(weights_after[name].astype(np.float64) - weights_before[name]) * (np.sqrt(accumulator) + 1e-10) / a.emb_lr
        else:
            ours = gradient[offset:offset + p.numel()].reshape(ref.shape)
            offset += p.numel()
        scale = np.abs(ref).max()
        rows_out.append((float(np.abs(ours - ref).max() / scale) if scale > 0 else float(np.abs(ours).max()), name, scale))
    if offset != len(gradient):
        sys.exit(f"check_training_step: Braid's dense block has {len(gradient)} values, the reference's {offset}")
    rows_out.sort(reverse=True)
    print(f"step {a.step} of {a.train} (batch {a.batch_size}, seed {a.seed}): reference loss {loss.item():.6f}")
    print(f"{'parameter':<40}{'max |g_braid - g_ref| / max |g_ref|':>38}{'max |g_ref|':>14}")
    for rel, name, scale in rows_out[:10]:
        print(f"{name:<40}{rel:>38.2e}{scale:>14.2e}")
    median = float(np.median([r[0] for r in rows_out]))
    worst = rows_out[0][0]
    verdict = "ok" if worst <= a.tolerance else "FAIL"
    print(f"{len(rows_out)} parameters: worst {worst:.2e}, median {median:.2e} (tolerance {a.tolerance}): {verdict}")
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if verdict == "ok" else 1)


if __name__ == "__main__":
    main()

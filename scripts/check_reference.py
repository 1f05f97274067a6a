#!/usr/bin/env python3
"""Checks a Braid model directory against the PyTorch reference (needs torch, safetensors).

    python3 scripts/check_reference.py --model RUN/model --data test.csv [--braid .build/release/braid]

1. loads weights.safetensors with safetensors.torch.load_file (the file PyTorch reads);
2. loads the directory with the reference's loader (braid_ref.load_model_dir);
3. scores --data with `braid predict` and with the reference's `train_ref.py predict`;
4. prints the largest difference of the calibrated probabilities and fails above 1e-4.
--model may be given several times or name a folder of surface models, as in SPEC 6.
The reference lives in ../shared/reference (or --reference DIR).
"""
import argparse
import csv
import os
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))


def read(path):
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--braid", default=os.path.join(here, "..", ".build", "release", "braid"))
    ap.add_argument("--reference", default=os.path.join(here, "..", "..", "shared", "reference"))
    ap.add_argument("--tolerance", type=float, default=1e-4)
    a = ap.parse_args()
    sys.path.insert(0, a.reference)
    import braid_ref as br  # noqa: E402
    from safetensors.torch import load_file  # noqa: E402
    import train_ref  # noqa: E402

    for d in train_ref.model_dirs(a.model):
        tensors = load_file(os.path.join(d, "weights.safetensors"))
        model, config = br.load_model_dir(d)
        print(f"{d}: {len(tensors)} tensors load in PyTorch and in the reference's BraidModel")
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = os.path.join(tmp, "braid.csv"), os.path.join(tmp, "reference.csv")
        args = sum((["--model", m] for m in a.model), [])
        subprocess.run([a.braid, "predict", *args, "--data", a.data, "--out", ours], check=True)
        subprocess.run([sys.executable, os.path.join(a.reference, "train_ref.py"), "predict", *args,
                        "--data", a.data, "--out", theirs], check=True)
        h1, r1 = read(ours)
        h2, r2 = read(theirs)
    if h1 != h2 or len(r1) != len(r2):
        sys.exit(f"FAIL: header {h1} vs {h2}, {len(r1)} vs {len(r2)} rows")
    worst = 0.0
    for x, y in zip(r1, r2):
        if x[:2] != y[:2]:
            sys.exit(f"FAIL: row {x[:2]} vs {y[:2]}")
        for p, q in zip(x[2:], y[2:]):
            if (p == "") != (q == ""):
                sys.exit(f"FAIL: row {x[0]}: {p!r} vs {q!r}")
            if p:
                worst = max(worst, abs(float(p) - float(q)))
    print(f"{len(r1)} rows, {len(h1) - 2} task columns: max |p_braid - p_reference| = {worst:.3g} "
          f"(tolerance {a.tolerance:g})")
    sys.exit(0 if worst <= a.tolerance else 1)


if __name__ == "__main__":
    main()

"""Long-sequence parity fixtures (max_length 256) from the PyTorch reference.

    python scripts/make_long_fixtures.py [--reference ../shared/reference] [--out Tests/Fixtures]

Writes Tests/Fixtures/long_early and Tests/Fixtures/long_append with the reference's own
`make_fixtures.make_fixture` (same layout and tolerances as its fixtures, README
"Fixtures"): the `early_lowrank` and `append_fusion` configs with sequence.max_length 256,
so the 24 rows' sequences hold 1..258 items (truncated past 256) and attention runs over
up to 256 keys (several blocks of Braid's blocked attention). Deterministic: the same bytes
every run. Needs torch, safetensors and numpy (the test suite itself does not).
"""
import argparse
import copy
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
LONG_L = 256


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", default=os.path.join(HERE, "..", "..", "shared", "reference"))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "Tests", "Fixtures"))
    ap.add_argument("--seed", type=int, default=4321)
    a = ap.parse_args()
    sys.path.insert(0, os.path.abspath(a.reference))
    import torch
    import make_fixtures as mf

    torch.set_num_threads(1)
    for i, (name, base) in enumerate([("long_early", "early_lowrank"), ("long_append", "append_fusion")]):
        cfg = copy.deepcopy(mf.CONFIGS[base])
        cfg["schema"]["sequence"]["max_length"] = LONG_L
        mf.make_fixture(name, cfg, os.path.abspath(a.out), a.seed + i)
    print(f"wrote {os.path.abspath(a.out)}/long_early, long_append")


if __name__ == "__main__":
    main()

"""Benchmark configs and data for `braid bench` and the reference's bench_ref.py.

    python3 scripts/bench_data.py --schema demo|large --max-length L [--rows N] [--full] --out DIR

-> DIR/model.json, DIR/train.csv (N rows), DIR/test.csv (N / 4 rows).

`demo`: the schema and SPEC 2.8 model of the reference's gen_demo.py (six categorical
features of 64-200k buckets, a multi-valued one, two surface-only features), only
`max_length` changed. `large`: what a new user's production schema looks like: twelve
categorical features (eight of 1k-200k buckets, two multi-valued, four surface-only, a
context feature sharing the item table), six dense features (two surface-only), the same
model. Sequence lengths: with --full every user has at least max_length actions (the
worst case: every position valid), else 1..1.4 L with 8% empty (gen_demo's shape, scaled).
Labels follow a simple logistic truth (it is a cost benchmark, not a quality one).
Deterministic for a given --seed.
"""
import argparse
import copy
import csv
import json
import os

import numpy as np

SURFACES = ["home_feed", "search", "related_pins"]
TASKS = {"home_feed": ["click", "save"], "search": ["click"], "related_pins": ["click", "save"]}
DEMO_CAT = [
    {"name": "user_id", "side": "user", "buckets": 100000},
    {"name": "user_country", "side": "user", "buckets": 64},
    {"name": "ad_id", "side": "candidate", "buckets": 200000, "table": "item"},
    {"name": "advertiser_id", "side": "candidate", "buckets": 20000},
    {"name": "query_tokens", "side": "context", "buckets": 50000, "multi": "mean", "surfaces": ["search"]},
    {"name": "context_pin_cat", "side": "context", "buckets": 1000, "surfaces": ["related_pins"]},
]
DEMO_DENSE = [
    {"name": "ad_hist_ctr", "side": "candidate", "transform": "log1p"},
    {"name": "query_ad_sim", "side": "context", "transform": "standardize", "surfaces": ["search"]},
]
LARGE_CAT = [
    {"name": "user_id", "side": "user", "buckets": 200000},
    {"name": "user_city", "side": "user", "buckets": 20000},
    {"name": "user_interests", "side": "user", "buckets": 5000, "multi": "sum"},
    {"name": "ad_id", "side": "candidate", "buckets": 200000, "table": "item"},
    {"name": "advertiser_id", "side": "candidate", "buckets": 50000},
    {"name": "campaign_id", "side": "candidate", "buckets": 100000},
    {"name": "ad_category", "side": "candidate", "buckets": 1000},
    {"name": "device", "side": "context", "buckets": 16},
    {"name": "query_tokens", "side": "context", "buckets": 50000, "multi": "mean", "surfaces": ["search"]},
    {"name": "context_pin_id", "side": "context", "buckets": 200000, "table": "item", "surfaces": ["related_pins"]},
    {"name": "context_board", "side": "context", "buckets": 20000, "surfaces": ["related_pins"]},
    {"name": "feed_slot", "side": "context", "buckets": 64, "surfaces": ["home_feed"]},
]
LARGE_DENSE = [
    {"name": "ad_hist_ctr", "side": "candidate", "transform": "log1p"},
    {"name": "ad_age_days", "side": "candidate", "transform": "log1p"},
    {"name": "user_age", "side": "user", "transform": "standardize"},
    {"name": "user_activity", "side": "user", "transform": "log1p"},
    {"name": "query_ad_sim", "side": "context", "transform": "standardize", "surfaces": ["search"]},
    {"name": "pin_quality", "side": "context", "transform": "none", "surfaces": ["related_pins"]},
]
MODEL = {"embedding_dim": 16,
         "sequence": {"fusion": "early", "d_model": 32, "n_heads": 2, "n_layers": 2,
                      "d_ff": 64, "recent_k": 4, "proj_rank": 32, "proj_dim": 32},
         "cross_layers": 3, "cross_rank": 32, "deep": [256, 128],
         "experts": 4, "expert_layers": [128], "tower_layers": [64],
         "module_layers": [32], "task_weights": {"click": 1.0, "save": 1.0},
         "calibration_mode": "surface"}
WORDS = ["red", "shoes", "lamp", "café", "sofa", "garden", "dress", "ski", "cake", "desk"]


def config(schema: str, L: int) -> dict:
    cat, dense = (DEMO_CAT, DEMO_DENSE) if schema == "demo" else (LARGE_CAT, LARGE_DENSE)
    sch = {"surfaces": SURFACES, "tasks": TASKS, "categorical": copy.deepcopy(cat), "dense": copy.deepcopy(dense),
           "sequence": {"items": "seq_items", "actions": "seq_actions", "max_length": L, "action_types": 8,
                        "item_table": "item"}}
    return {"format": "braid-model", "version": 1, "schema": sch, "model": copy.deepcopy(MODEL),
            "dense_stats": {}, "calibration": {}, "surfaces_included": SURFACES}


def cell(rng, f: dict, ids: dict) -> str:
    """One categorical cell: a value of the feature's vocabulary (about 2x its buckets)."""
    vocab = max(2, 2 * f["buckets"])
    if f.get("multi"):
        if f["name"] == "query_tokens":
            return " ".join(f"{WORDS[k % 10]}{k}" for k in rng.integers(0, vocab, rng.integers(1, 4)))
        return " ".join(f"{f['name'][0]}{k}" for k in rng.integers(0, vocab, rng.integers(1, 8)))
    if f["name"] in ids:
        return ids[f["name"]]
    return f"{f['name'][:3]}{int(rng.integers(vocab))}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--schema", choices=["demo", "large"], default="demo")
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--full", action="store_true", help="every sequence at least max_length long")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    cfg = config(a.schema, a.max_length)
    sch = cfg["schema"]
    L = a.max_length
    n_users, n_ads = max(300, a.rows // 20), max(400, a.rows // 10)
    hist_len = (np.full(n_users, L + 4) if a.full else
                np.where(rng.random(n_users) < 0.08, 0, rng.integers(1, int(1.4 * L) + 1, n_users)))
    hist = [rng.integers(0, n_ads, n) for n in hist_len]
    acts = [rng.integers(1, 8, n) for n in hist_len]
    u_bias, ad_q = rng.normal(0, 0.7, n_users), rng.normal(0, 0.8, n_ads)
    cat = [f["name"] for f in sch["categorical"]]
    dense = [f["name"] for f in sch["dense"]]
    cols = ["surface", "click", "save"] + cat + dense + ["seq_items", "seq_actions"]
    os.makedirs(a.out, exist_ok=True)
    for split, n_rows in [("train", a.rows), ("test", max(1, a.rows // 4))]:
        with open(os.path.join(a.out, split + ".csv"), "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            for _ in range(n_rows):
                s = SURFACES[rng.choice(3, p=[0.5, 0.3, 0.2])]
                u, ad = int(rng.integers(n_users)), int(rng.integers(n_ads))
                p = 1 / (1 + np.exp(-(-1.8 + u_bias[u] + ad_q[ad])))
                row = {"surface": s, "click": str(int(rng.random() < p)),
                       "save": "" if s == "search" else str(int(rng.random() < p / 2))}
                ids = {"user_id": f"u{u}", "ad_id": f"a{ad}", "advertiser_id": f"v{ad % 997}",
                       "campaign_id": f"cp{ad % 4999}", "ad_category": f"cat{ad % 300}", "user_city": f"city{u % 3001}",
                       "user_country": f"c{u % 10}", "context_pin_id": f"a{int(rng.integers(n_ads))}"}
                for f in sch["categorical"]:
                    on = s in f.get("surfaces", SURFACES)
                    row[f["name"]] = cell(rng, f, ids) if on and rng.random() > 0.03 else ""
                for f in sch["dense"]:
                    on = s in f.get("surfaces", SURFACES)
                    row[f["name"]] = f"{abs(rng.normal(0.5, 1.0)):.4f}" if on and rng.random() > 0.03 else ""
                row["seq_items"] = " ".join(f"a{x}" for x in hist[u])
                row["seq_actions"] = " ".join(str(x) for x in acts[u])
                w.writerow([row[c] for c in cols])
    with open(os.path.join(a.out, "model.json"), "w") as fh:
        json.dump(cfg, fh, indent=1)
    print(f"wrote {a.out}/model.json ({a.schema}, max_length {L}), train.csv ({a.rows}), test.csv ({max(1, a.rows // 4)})")


if __name__ == "__main__":
    main()

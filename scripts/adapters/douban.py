#!/usr/bin/env python3
"""Turn the Douban 3-domain sample into Braid rows (SPEC 1.2) and a model.json (SPEC 2.8).

Usage:
    python3 scripts/adapters/douban.py OUT_DIR [--input douban_sample.csv] [--seed 0]
        [--valid 0.1] [--test 0.1] [--limit N]

Input: /work/shared/data/douban-3domain/douban_sample.csv (see PROVENANCE.md there):
columns user_id, item_id, rating, domain, living_place, join_time, time_bin.

Output in OUT_DIR: train.csv, valid.csv, test.csv, model.json.
- surface = `domain` (book, movie, music): the three Douban domains are the three surfaces;
  each has one task, `click`.
- click = `rating`, which the source repository already binarised (1 if the star rating
  is > 3, else 0): a like-or-not label used as the click-like label.
- categorical: user_id (user side), user_city = living_place (user side, empty = missing),
  user_join_bin = time_bin (the sign-up month bucket, user side), item_id (candidate side,
  table `item`). Buckets are max(64, 8 x distinct values), as `braid generate` sizes them.
- no action sequence: the file has no interaction timestamps (join_time is the user's
  sign-up date), so a user's "earlier" interactions cannot be told apart from later ones and
  any sequence would leak future labels. The schema therefore has no `sequence`.
- split: rows are shuffled with random.Random(seed) and cut into train / valid / test by the
  given fractions (deterministic for a seed).

Python 3 standard library only.
"""
import argparse
import csv
import json
import os
import random
import sys

DEFAULT_INPUT = "/work/shared/data/douban-3domain/douban_sample.csv"
SURFACES = ["book", "movie", "music"]
COLUMNS = ["surface", "user_id", "user_city", "user_join_bin", "item_id", "click"]


def buckets(distinct):
    return max(64, 8 * distinct)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="output folder (created if missing)")
    parser.add_argument("--input", default=DEFAULT_INPUT, help="douban_sample.csv")
    parser.add_argument("--seed", type=int, default=0, help="shuffle seed of the split")
    parser.add_argument("--valid", type=float, default=0.1, help="fraction of rows for valid.csv")
    parser.add_argument("--test", type=float, default=0.1, help="fraction of rows for test.csv")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N rows (0 = all)")
    args = parser.parse_args(argv)
    if not (0 <= args.valid < 1 and 0 <= args.test < 1 and args.valid + args.test < 1):
        parser.error(f"--valid {args.valid} and --test {args.test}: expected fractions in [0, 1) summing below 1")

    rows = []
    with open(args.input, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        expected = {"user_id", "item_id", "rating", "domain", "living_place", "time_bin"}
        missing = expected - set(reader.fieldnames or [])
        if missing:
            sys.exit(f"{args.input}: no column {sorted(missing)}; expected the Douban sample's header "
                     "user_id,item_id,rating,domain,living_place,join_time,time_bin")
        for line, record in enumerate(reader, start=2):
            if record["domain"] not in SURFACES:
                sys.exit(f"{args.input}:{line}: domain {record['domain']!r}; expected one of {SURFACES}")
            if record["rating"] not in ("0", "1"):
                sys.exit(f"{args.input}:{line}: rating {record['rating']!r}; expected the binarised 0 or 1")
            rows.append({
                "surface": record["domain"],
                "user_id": record["user_id"],
                "user_city": record["living_place"].strip(),
                "user_join_bin": record["time_bin"],
                "item_id": record["item_id"],
                "click": record["rating"],
            })
            if args.limit and len(rows) >= args.limit:
                break
    if not rows:
        sys.exit(f"{args.input}: no rows; expected the Douban sample")

    random.Random(args.seed).shuffle(rows)
    n_valid = int(len(rows) * args.valid)
    n_test = int(len(rows) * args.test)
    n_train = len(rows) - n_valid - n_test
    splits = {"train.csv": rows[:n_train], "valid.csv": rows[n_train:n_train + n_valid],
              "test.csv": rows[n_train + n_valid:]}

    os.makedirs(args.out, exist_ok=True)
    for name, part in splits.items():
        with open(os.path.join(args.out, name), "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(part)

    def distinct(column):
        return len({row[column] for row in rows if row[column]})

    config = {
        "format": "braid-model", "version": 1,
        "schema": {
            "surfaces": SURFACES,
            "tasks": {surface: ["click"] for surface in SURFACES},
            "categorical": [
                {"name": "user_id", "side": "user", "buckets": buckets(distinct("user_id"))},
                {"name": "user_city", "side": "user", "buckets": buckets(distinct("user_city"))},
                {"name": "user_join_bin", "side": "user", "buckets": buckets(distinct("user_join_bin"))},
                {"name": "item_id", "side": "candidate", "buckets": buckets(distinct("item_id")), "table": "item"},
            ],
            "dense": [],
        },
        "model": {
            "embedding_dim": 16,
            "cross_layers": 2, "cross_rank": 16, "deep": [64, 32],
            "experts": 3, "expert_layers": [32], "tower_layers": [16], "module_layers": [16],
            "task_weights": {"click": 1.0}, "calibration_mode": "surface",
        },
        "dense_stats": {},
        "surfaces_included": SURFACES,
    }
    with open(os.path.join(args.out, "model.json"), "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=1, ensure_ascii=False)
        handle.write("\n")
    counts = ", ".join(f"{name} {len(part)}" for name, part in splits.items())
    print(f"wrote {args.out}: {counts} rows; surfaces {SURFACES}")


if __name__ == "__main__":
    main()

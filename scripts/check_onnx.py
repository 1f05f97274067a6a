#!/usr/bin/env python3
"""Scores Braid's ONNX exports with ONNX Runtime and compares them with Braid.

Three uses (pip install onnxruntime numpy; nothing of Braid is imported):

  # one graph and the test data set `braid export --format onnx --test-data` wrote
  scripts/check_onnx.py --onnx m.onnx --test-data test_data_set_0 [--predictions p.csv]

  # every surface of a model: export each as ONNX with the CSV's rows, run `braid predict`
  # once, score every surface with ONNX Runtime, print max |probability diff| per surface
  scripts/check_onnx.py --model RUN/model --data test.csv --work /tmp/onnx-check

  # ... and latency of 1 user x C candidates: ONNX Runtime beside `braid bench score`
  scripts/check_onnx.py --model RUN/model --data test.csv --work /tmp/onnx-check --bench

Inputs are the graph's (docs/ONNX.md): user-side ones have one row per user, the others
one row per candidate, `user_index` maps candidates to users. The test data set has one
user per row; the checks score it in chunks of --chunk rows. Exit status 1 when a
difference exceeds --tolerance (default 1e-5).
"""
import argparse
import csv
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np

try:
    import onnxruntime as ort
except ImportError:
    sys.exit("check_onnx: onnxruntime is not installed; expected `python3 -m pip install onnxruntime` first")

ELEM = {1: np.float32, 7: np.int64, 9: np.bool_, 11: np.float64}


def _DecodeVarint(buf, pos):
    """Protobuf base-128 varint at buf[pos] -> (value, next position)."""
    value, shift = 0, 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def read_tensor(path):
    """A serialized onnx TensorProto (raw_data, or packed double/float fields) -> (name, array)."""
    buf = open(path, "rb").read()
    dims, dtype, name, raw, packed = [], 1, "", b"", {}
    pos = 0
    while pos < len(buf):
        key, pos = _DecodeVarint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _DecodeVarint(buf, pos)
            if field == 1:
                dims.append(value)
            elif field == 2:
                dtype = value
        elif wire == 2:
            n, pos = _DecodeVarint(buf, pos)
            chunk = buf[pos:pos + n]
            pos += n
            if field == 1:  # packed dims
                p = 0
                while p < len(chunk):
                    v, p = _DecodeVarint(chunk, p)
                    dims.append(v)
            elif field == 8:
                name = chunk.decode()
            elif field == 9:
                raw = chunk
            else:
                packed[field] = chunk
        elif wire == 5:
            pos += 4
        elif wire == 1:
            pos += 8
        else:
            raise ValueError(f"{path}: unexpected wire type {wire}")
    if raw:
        array = np.frombuffer(raw, dtype=ELEM[dtype]).copy()
    elif 10 in packed:  # double_data
        array = np.frombuffer(packed[10], dtype="<f8").copy()
    elif 4 in packed:  # float_data
        array = np.frombuffer(packed[4], dtype="<f4").copy()
    else:
        array = np.zeros(0, dtype=ELEM[dtype])
    return name, array.reshape(dims)


def read_test_data(directory):
    """test_data_set_0 -> (inputs {name: array}, outputs {name: array}, file rows)."""
    def numbered(prefix):
        files = sorted(glob.glob(os.path.join(directory, f"{prefix}_*.pb")), key=lambda f: int(f.rsplit("_", 1)[1][:-3]))
        return dict(read_tensor(f) for f in files)

    inputs, outputs = numbered("input"), numbered("output")
    if not inputs:
        sys.exit(f"check_onnx: {directory} has no input_<i>.pb; expected a test data set of `braid export --format onnx --test-data`")
    rows = read_tensor(os.path.join(directory, "braid_rows.pb"))[1]
    return inputs, outputs, rows


def session(path, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def inputs_of_side(sess, side):
    """Names of the graph's `side` inputs (user, context, candidate), from its metadata."""
    return set(filter(None, sess.get_modelmeta().custom_metadata_map.get(f"braid.inputs.{side}", "").split(",")))


def score_rows(sess, inputs, rows):
    """Scores data rows `rows` (each its own user) -> {output name: [len(rows)]}."""
    feed = {name: value[rows] for name, value in inputs.items()}
    if "user_index" in feed:
        feed["user_index"] = np.arange(len(rows), dtype=np.int64)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feed)))


def score_all(sess, inputs, chunk):
    """Scores a test data set: in chunks of `chunk` rows when every row is its own user,
    else (users shared by candidates) in one call."""
    if "user_index" in inputs and not np.array_equal(inputs["user_index"], np.arange(len(inputs["user_index"]))):
        names = [o.name for o in sess.get_outputs()]
        return dict(zip(names, sess.run(names, inputs)))
    n = len(next(iter(inputs.values())))
    parts = [score_rows(sess, inputs, np.arange(a, min(a + chunk, n))) for a in range(0, n, chunk)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}


def read_predictions(path):
    """`braid predict` CSV -> {row: {task: p}} (empty cells left out)."""
    out = {}
    with open(path, newline="") as f:
        for record in csv.DictReader(f):
            out[int(record["row"])] = {k: float(v) for k, v in record.items() if k not in ("row", "surface") and v != ""}
    return out


def check(onnx_path, test_data, predictions, chunk, threads):
    """-> rows of (output, count, max |ORT - Braid engine|, max |ORT - braid predict| or None)."""
    sess = session(onnx_path, threads)
    inputs, expected, file_rows = read_test_data(test_data)
    got = score_all(sess, inputs, chunk)
    predicted = read_predictions(predictions) if predictions else None
    result = []
    for name in [o.name for o in sess.get_outputs()]:
        p = got[name].astype(np.float64)
        engine = float(np.max(np.abs(p - expected[name].astype(np.float64)))) if len(p) else 0.0
        versus_predict = None
        if predicted is not None:
            task = name[2:]
            reference = np.array([predicted[int(r)][task] for r in file_rows], dtype=np.float64)
            versus_predict = float(np.max(np.abs(p - reference))) if len(p) else 0.0
        result.append((name, len(p), engine, versus_predict))
    return result


def run(command):
    print("+ " + " ".join(command), file=sys.stderr)
    return subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout


def bench_onnx(sess, inputs, candidates, requests, warmup):
    """1 user x `candidates` requests from the test data set's rows (users and candidates by
    the same strides as `braid bench score`), timed around `InferenceSession.run`."""
    users, context = inputs_of_side(sess, "user"), inputs_of_side(sess, "context")
    n = len(next(iter(inputs.values())))
    names = [o.name for o in sess.get_outputs()]
    times = []
    for q in range(requests + warmup):
        u = (q * 31) % n
        start = (q * 7919) % n
        rows = (start + np.arange(candidates) * 13) % n
        feed = {}
        for name, value in inputs.items():
            if name == "user_index":
                feed[name] = np.zeros(candidates, dtype=np.int64)
            elif name in users:
                feed[name] = value[u:u + 1]
            elif name in context:
                feed[name] = np.repeat(value[u:u + 1], candidates, axis=0)
            else:
                feed[name] = value[rows]
        t0 = time.perf_counter()
        sess.run(names, feed)
        t1 = time.perf_counter()
        if q >= warmup:
            times.append((t1 - t0) * 1000)
    times.sort()
    pct = lambda p: times[min(len(times) - 1, int(round(p * (len(times) - 1))))]
    return {"p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99), "mean_ms": sum(times) / len(times)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", help="an exported .onnx file (with --test-data)")
    ap.add_argument("--test-data", help="its test data set directory")
    ap.add_argument("--predictions", help="`braid predict` CSV of the same data file, to compare with too")
    ap.add_argument("--model", help="a Braid model directory: check every surface it serves")
    ap.add_argument("--data", help="CSV rows (SPEC 1.2) to score, with --model")
    ap.add_argument("--work", default="/tmp/braid-onnx-check", help="a new directory for the exports (with --model)")
    ap.add_argument("--braid", default=".build/release/braid", help="the braid binary")
    ap.add_argument("--tolerance", type=float, default=1e-5)
    ap.add_argument("--chunk", type=int, default=1024, help="rows per ONNX Runtime call when checking")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (and braid bench --threads)")
    ap.add_argument("--bench", action="store_true", help="also time 1 user x --candidates requests, ONNX Runtime and braid")
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    args = ap.parse_args()

    worst = 0.0
    if args.onnx:
        if not args.test_data:
            sys.exit("check_onnx: --onnx needs --test-data DIR")
        print("| output | rows | max abs diff vs Braid engine | max abs diff vs braid predict |")
        print("| --- | ---: | ---: | ---: |")
        for name, count, engine, versus in check(args.onnx, args.test_data, args.predictions, args.chunk, args.threads):
            worst = max(worst, engine, versus or 0.0)
            print(f"| {name} | {count} | {engine:.3g} | {'-' if versus is None else f'{versus:.3g}'} |")
    elif args.model and args.data:
        config = json.load(open(os.path.join(args.model, "model.json")))
        if os.path.exists(args.work):
            sys.exit(f"check_onnx: {args.work} exists; expected a new directory (--work)")
        os.makedirs(args.work)
        predictions = os.path.join(args.work, "predict.csv")
        run([args.braid, "predict", "--model", args.model, "--data", args.data, "--out", predictions])
        print(f"ONNX Runtime {ort.__version__} vs braid predict ({args.data}); onnxruntime threads {args.threads}; load {os.getloadavg()[0]:.2f}")
        print()
        print("| surface | fusion | output | rows | max abs diff vs Braid engine | max abs diff vs braid predict |")
        print("| --- | --- | --- | ---: | ---: | ---: |")
        fusion = (config["model"].get("sequence") or {}).get("fusion", "none")
        exports = []
        for s in config["surfaces_included"]:
            path, data_dir = os.path.join(args.work, f"{s}.onnx"), os.path.join(args.work, f"{s}.test_data")
            run([args.braid, "export", "--model", args.model, "--surface", s, "--format", "onnx", "--out", path,
                 "--test-data", args.data, "--test-data-dir", data_dir])
            exports.append((s, path, data_dir))
            for name, count, engine, versus in check(path, data_dir, predictions, args.chunk, args.threads):
                worst = max(worst, engine, versus)
                print(f"| {s} | {fusion} | {name} | {count} | {engine:.3g} | {versus:.3g} |", flush=True)
        if args.bench:
            print()
            bench(args, config, exports)
    else:
        ap.error("give --onnx FILE --test-data DIR, or --model DIR --data CSV")
    print(f"\nmax |probability diff| {worst:.3g} (tolerance {args.tolerance:g})")
    if worst > args.tolerance:
        sys.exit(1)


def bench(args, config, exports):
    """ONNX Runtime and `braid bench score` on 1 user x C candidates, per surface, one run."""
    print(f"1 user x {args.candidates} candidates, {args.requests} requests after {args.warmup} warm-up; "
          f"threads {args.threads}; load {os.getloadavg()[0]:.2f} (os.getloadavg)")
    print()
    print("| surface | engine | p50 ms | p90 ms | p99 ms | mean ms |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for s, path, data_dir in exports:
        sess = session(path, args.threads)
        inputs, _, _ = read_test_data(data_dir)
        o = bench_onnx(sess, inputs, args.candidates, args.requests, args.warmup)
        out = run([args.braid, "bench", "score", "--model", args.model, "--data", args.data, "--surface", s,
                   "--candidates", str(args.candidates), "--batch-users", "0", "--broadcast-only",
                   "--threads", str(args.threads), "--requests", str(args.requests), "--warmup", str(args.warmup)])
        b = [json.loads(line) for line in out.splitlines() if line.startswith("{")][0]
        for engine, r in ((f"ONNX Runtime {ort.__version__}", o), ("Braid InferenceEngine", b)):
            print(f"| {s} | {engine} | {r['p50_ms']:.3f} | {r['p90_ms']:.3f} | {r['p99_ms']:.3f} | {r['mean_ms']:.3f} |", flush=True)


if __name__ == "__main__":
    main()

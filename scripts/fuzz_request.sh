#!/usr/bin/env bash
# Fuzzes the SPEC 5 request decoder with libFuzzer (swiftc -sanitize=fuzzer,address), then
# replays the corpus it grew over HTTP against a real `braid serve`.
#
#   scripts/fuzz_request.sh [SECONDS] [RUNS]      # defaults: 1800 s, 1000000 inputs (whichever ends first)
#
# 1. Builds the Inference module and its dependencies instrumented for coverage and ASan
#    (.build-fuzz), and Fuzz/RequestFuzzer.swift against them -> .build-fuzz/request-fuzzer.
# 2. Runs it (one process, nice -n 10: the machine is shared) on a corpus seeded with
#    Fuzz/seeds (the bodies of Tests/Fixtures/requests) and Fuzz/request.dict, for SECONDS or
#    RUNS inputs; crashes are written to $OUT/crash-*.
# 3. Starts `braid serve --model Tests/Fixtures/late_fullrank` on 127.0.0.1 and POSTs every
#    corpus file (and every crash input) to /v1/score: each answer must be 200, or 400/413
#    with a JSON {"error": {"message"}} body; any other status (5xx) or a dropped connection
#    fails the script.
# Needs the release binary (scripts/build) for step 3. $OUT (default /tmp/braid-fuzz) keeps
# the corpus, crash inputs and logs.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-1800}
runs=${2:-1000000}
out=${OUT:-/tmp/braid-fuzz}
braid=${BRAID:-.build/release/braid}
source scripts/flags.sh
mkdir -p "$out/corpus"
if [ "${1:-}" = "--build-only" ]; then build_only=1; seconds=0; else build_only=0; fi

echo "== build (instrumented) ==" >&2
swift build -c release --scratch-path .build-fuzz --target Inference "${BRAID_SWIFT_FLAGS[@]}" \
  -Xswiftc -sanitize=fuzzer,address >&2
bin=$(swift build -c release --scratch-path .build-fuzz --show-bin-path)
objects=()
for module in Kernels Tensors NN Random JSON Schema Data Checkpoint Model Inference; do  # Inference and what it imports
  objects+=("$bin/$module.build/"*.o)
done
cpu_flags=()
[ -n "$cpu" ] && cpu_flags=(-target-cpu "$cpu")
swiftc -O "${cpu_flags[@]}" -sanitize=fuzzer,address -parse-as-library -module-name RequestFuzzer \
  -I "$bin/Modules" -I Sources/CBLAS Fuzz/RequestFuzzer.swift "${objects[@]}" -lopenblas -o .build-fuzz/request-fuzzer

[ "$build_only" = 1 ] && exit 0
echo "== fuzz: ${seconds}s or ${runs} inputs ==" >&2
set +e
ASAN_OPTIONS=detect_leaks=0 nice -n 10 .build-fuzz/request-fuzzer -max_total_time="$seconds" -runs="$runs" -max_len=4096 \
  -dict=Fuzz/request.dict -artifact_prefix="$out/" -print_final_stats=1 "$out/corpus" Fuzz/seeds 2>&1 | tee "$out/fuzz.log" \
  | grep -E '^#[0-9]+ +(pulse|DONE|NEW)|stat::|ERROR|==[0-9]+==|Fatal|crash' | tail -n 40 >&2
fuzz_status=${PIPESTATUS[0]}
set -e
echo "fuzzer exit status $fuzz_status; $(ls "$out/corpus" | wc -l) corpus inputs; crashes: $(ls "$out"/crash-* 2>/dev/null | wc -l)" >&2

echo "== replay over HTTP ==" >&2
[ -x "$braid" ] || { echo "no braid binary at $braid (scripts/build)" >&2; exit 1; }
port=${PORT:-18090}
"$braid" serve --model Tests/Fixtures/late_fullrank --host 127.0.0.1 --port "$port" --max-unique-users 4 \
  --max-body-bytes 2048 --batch-wait-us 0 2>"$out/serve.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
python3 - "$port" "$out" Fuzz/seeds <<'PY'
import glob, http.client, json, os, sys
port, out = int(sys.argv[1]), sys.argv[2]
files = sorted(glob.glob(os.path.join(out, "corpus", "*")) + glob.glob(os.path.join(out, "crash-*")) + glob.glob(os.path.join(sys.argv[3], "*")))
counts, bad = {}, []
for path in files:
    body = open(path, "rb").read()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v1/score", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse(); text = r.read(); status = r.status
    except Exception as e:
        bad.append((path, f"no answer: {e!r}")); continue
    finally:
        conn.close()
    counts[status] = counts.get(status, 0) + 1
    if status == 200:
        continue
    try:
        message = json.loads(text)["error"]["message"]
        ok = status in (400, 413) and isinstance(message, str) and message
    except Exception:
        ok = False
    if not ok:
        bad.append((path, f"{status} {text[:200]!r}"))
print(f"replayed {len(files)} bodies over HTTP: statuses {dict(sorted(counts.items()))}; bad answers: {len(bad)}")
for path, why in bad[:20]:
    print(f"  {path}: {why}")
sys.exit(1 if bad else 0)
PY
replay_status=$?
[ "$fuzz_status" -eq 0 ] || { echo "the fuzzer found a crash (exit $fuzz_status): see $out/fuzz.log and $out/crash-*" >&2; exit 1; }
exit $replay_status

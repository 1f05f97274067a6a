#!/usr/bin/env bash
# Load-and-fault test of `braid serve --registry` with wrk, on 127.0.0.1 only.
#
#   scripts/loadtest.sh [MODEL_DIR]
#
# MODEL_DIR: a unified model directory serving $SURFACE (default home_feed); without it a
# small one is made first (braid generate --rows 6000, its model.json with sequence fusion
# $FUSION (default late: the Transformer runs once per user and is broadcast; `early` runs it
# per candidate, about 2.5x the engine time here), braid train --epochs 1, in a temp dir).
# Two runs of $DURATION (default 60s) at $CONNECTIONS (default 64) connections, each
# against a fresh `braid serve --registry` on port $PORT (default 18080):
#   1. baseline: no swaps;
#   2. fault: a new version lands in the registry every 5 s (copied to a dot-name, then
#      renamed: SPEC 3) and POST /admin/rollback runs every 15 s (at 7.5, 22.5, ... s).
# The body is 1 user (20-item sequence) x $CANDIDATES (default 10) candidates. Prints per
# run: requests, req/s, non-2xx, connection errors (connect/read/write/timeout), p50/p99/max
# latency, and hot swaps and rollbacks counted from /metrics; then the p99 ratio.
# Wrap it in `flock /tmp/braid-bench.lock` on a shared machine. Needs wrk (installed with
# scripts/setup --loadtest if missing), curl and python3. $BRAID: the binary (default .build/release/braid).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-}
braid=${BRAID:-.build/release/braid}
port=${PORT:-18080}
duration=${DURATION:-60s}
connections=${CONNECTIONS:-64}
candidates=${CANDIDATES:-10}
surface=${SURFACE:-home_feed}
fusion=${FUSION:-late}
token=loadtest-token
command -v wrk >/dev/null && command -v curl >/dev/null || scripts/setup --no-build --loadtest
[ -x "$braid" ] || { echo "no braid binary at $braid: scripts/build" >&2; exit 1; }

work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

if [ -z "$model" ]; then
  echo "making a model: braid generate --rows 6000, sequence fusion $fusion, braid train --epochs 1" >&2
  "$braid" generate --out "$work/data" --rows 6000 --seed 1 >"$work/make.log" 2>&1 \
    && python3 -c 'import json, sys; p = sys.argv[1]; c = json.load(open(p)); c["model"]["sequence"]["fusion"] = sys.argv[2]
json.dump(c, open(p, "w"), indent=1)' "$work/data/model.json" "$fusion" \
    && "$braid" train --config "$work/data/model.json" --train "$work/data/train.csv" --valid "$work/data/valid.csv" \
      --out "$work/run" --epochs 1 --quiet >>"$work/make.log" 2>&1 \
    || { cat "$work/make.log" >&2; exit 1; }
  model="$work/run/model"
fi

python3 - "$surface" "$candidates" >"$work/body.json" <<'PY'
import json, sys
cands = [{"ad_id": f"ad{c}", "advertiser_id": f"v{c % 13}", "ad_hist_ctr": 0.01 * (c % 7)} for c in range(int(sys.argv[2]))]
user = {"user_id": "u42", "user_country": "US", "user_age": 33,
        "seq_items": [f"a{i}" for i in range(20)], "seq_actions": [1 + i % 3 for i in range(20)]}
print(json.dumps({"surface": sys.argv[1], "requests": [{"user": user, "context": {}, "candidates": cands}]}))
PY
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$work/body.json", "r"); wrk.body = f:read("*a"); f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %.1f %d %d %.2f %.2f %.2f\n", summary.requests, summary.requests / (summary.duration / 1e6),
    e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
LUA

start_server() {  # registry
  "$braid" serve --registry "$1" --host 127.0.0.1 --port "$port" --admin-token "$token" --poll-ms 1000 \
    2>"$work/serve.log" &
  server=$!
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  curl -sf -X POST --data-binary @"$work/body.json" "http://127.0.0.1:$port/v1/score" >/dev/null \
    || { echo "scoring the load-test body failed:" >&2; curl -s -X POST --data-binary @"$work/body.json" "http://127.0.0.1:$port/v1/score" >&2; exit 1; }
}
stop_server() { kill -TERM "$server"; wait "$server" || { echo "braid serve exited non-zero" >&2; exit 1; }; server=""; }
counter() {  # action result: braid_model_lifecycle_total summed over surfaces
  curl -s "http://127.0.0.1:$port/metrics" | awk -v a="action=\"$1\"" -v r="result=\"$2\"" \
    '/^braid_model_lifecycle_total/ && index($0, a) && index($0, r) { s += $NF } END { print s + 0 }'
}
publish() {  # registry name: a new version by copy to a dot-name, then rename (SPEC 3)
  cp -r "$model" "$1/$surface/.$2.tmp"
  mv "$1/$surface/.$2.tmp" "$1/$surface/$2"
}
run() {  # label registry faults(0/1)
  local registry=$2 faults=$3 faulter=""
  start_server "$registry"
  local swaps0 rollbacks0
  swaps0=$(counter registry ok); rollbacks0=$(counter rollback ok)
  if [ "$faults" = 1 ]; then
    (  # ticks of 2.5 s: a new version at 5, 10, ..., a rollback at 7.5, 22.5, 37.5, 52.5
      n=2
      secs=${duration%s}
      for k in $(seq 1 $(( secs * 2 / 5 - 1 ))); do
        sleep 2.5
        if [ $((k % 2)) = 0 ]; then publish "$registry" "$(printf '%04d' $n)"; n=$((n + 1)); fi
        if [ $((k % 6)) = 3 ]; then
          for _ in 1 2 3 4 5; do  # 409 while a registry swap of the surface is running: try again
            code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $token" \
              --data "{\"surface\": \"$surface\"}" "http://127.0.0.1:$port/admin/rollback") || true
            [ "$code" = 200 ] && break
            echo "rollback answered $code" >&2; sleep 0.2
          done
        fi
      done
    ) &
    faulter=$!
  fi
  local result
  result=$(wrk -t 2 -c "$connections" -d "$duration" --timeout 10s -s "$work/post.lua" "http://127.0.0.1:$port/v1/score" | grep '^RESULT')
  [ -n "$faulter" ] && wait "$faulter"
  local swaps rollbacks
  swaps=$(( $(counter registry ok) - swaps0 )); rollbacks=$(( $(counter rollback ok) - rollbacks0 ))
  local failed; failed=$(counter registry error)
  echo "$result" | awk -v l="$1" -v s="$swaps" -v r="$rollbacks" -v f="$failed" \
    '{printf "| %-9s | %9d | %8s | %7d | %9d | %7s | %7s | %7s | %5d | %9d | %s\n", l, $2, $3, $4, $5, $6, $7, $8, s, r, f}'
  echo "$result" | awk '{print $7}' >"$work/p99-$1"
  stop_server
}

mkdir -p "$work/reg-base/$surface" "$work/reg-fault/$surface"
publish "$work/reg-base" 0001
publish "$work/reg-fault" 0001
echo "load: $(uptime | sed 's/.*load average/load average/'); $connections connections, $duration, 1 user x $candidates candidates, $surface"
echo "| run       |  requests |    req/s | non-2xx | conn errs | p50 ms  | p99 ms  | max ms  | swaps | rollbacks | failed loads"
echo "|-----------|-----------|----------|---------|-----------|---------|---------|---------|-------|-----------|-------------"
run baseline "$work/reg-base" 0
run fault "$work/reg-fault" 1
echo "load: $(uptime | sed 's/.*load average/load average/')"
python3 -c "import sys; b, f = float(sys.argv[1]), float(sys.argv[2]); print(f'p99 with swaps / p99 without: {f / b:.2f}')" \
  "$(cat "$work/p99-baseline")" "$(cat "$work/p99-fault")"

#!/usr/bin/env bash
# Load test of `braid serve` with wrk (Debian: apt-get install -y wrk).
#
#   scripts/loadtest.sh MODEL_DIR [BRAID_BINARY]
#
# Starts `braid serve --model MODEL_DIR` on 127.0.0.1 (port $PORT, default 18080), then
# for 1 user x 100 candidates on the model's first surface measures requests/s and
# latency percentiles with wrk at concurrency 1, 4 and 16 ($DURATION each, default 10s),
# and once more at concurrency 16 while the model is reloaded and rolled back 10 times
# (the non-2xx count must stay 0). Prints a table; the server's /metrics batch-size
# histogram sums go to stderr. Needs MODEL_DIR to serve "home_feed" unless $SURFACE says.
set -euo pipefail
model=${1:?usage: scripts/loadtest.sh MODEL_DIR [BRAID_BINARY]}
braid=${2:-.build-serve/release/braid}
port=${PORT:-18080}
duration=${DURATION:-10s}
surface=${SURFACE:-home_feed}
token=loadtest-token
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }
[ -x "$braid" ] || { echo "no braid binary at $braid: swift build -c release -Xswiftc -target-cpu -Xswiftc haswell --scratch-path .build-serve" >&2; exit 1; }

work=$(mktemp -d)
"$braid" serve --model "$model" --host 127.0.0.1 --port "$port" --admin-token "$token" 2>"$work/serve.log" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$work/serve.log" >&2; exit 1; }

python3 - "$surface" >"$work/body.json" <<'PY'
import json, sys
cands = [{"ad_id": f"ad{c}", "advertiser_id": f"v{c % 13}", "ad_hist_ctr": 0.01 * (c % 7)} for c in range(100)]
user = {"user_id": "u42", "user_country": "US", "user_age": 33,
        "seq_items": [f"a{i}" for i in range(20)], "seq_actions": [1 + i % 3 for i in range(20)]}
print(json.dumps({"surface": sys.argv[1], "requests": [{"user": user, "context": {}, "candidates": cands}]}))
PY
curl -sf -X POST --data-binary @"$work/body.json" "http://127.0.0.1:$port/v1/score" >/dev/null \
  || { echo "scoring the load-test body failed:" >&2; curl -s -X POST --data-binary @"$work/body.json" "http://127.0.0.1:$port/v1/score" >&2; exit 1; }

cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$work/body.json", "r"); wrk.body = f:read("*a"); f:close()
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %.1f %.2f %.2f %.2f %d\n", summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

run() {  # concurrency label
  wrk -t "$(( $1 < 2 ? 1 : 2 ))" -c "$1" -d "$duration" -s "$work/post.lua" "http://127.0.0.1:$port/v1/score" | grep '^RESULT' \
    | awk -v c="$1" -v l="$2" '{printf "| %-22s | %3d | %9s | %8s | %8s | %8s | %6s |\n", l, c, $3, $4, $5, $6, $7}'
}
echo "| run                    |   c | req/s     | p50 ms   | p99 ms   | max ms   | errors |"
echo "|------------------------|-----|-----------|----------|----------|----------|--------|"
for c in 1 4 16; do run "$c" "1 user x 100 cands"; done
(
  for _ in $(seq 1 5); do
    sleep 0.8
    curl -sf -X POST -H "Authorization: Bearer $token" --data "{\"surface\": \"$surface\", \"model\": \"$model\"}" \
      "http://127.0.0.1:$port/admin/reload" >/dev/null || echo "reload failed" >&2
    sleep 0.8
    curl -sf -X POST -H "Authorization: Bearer $token" --data "{\"surface\": \"$surface\"}" \
      "http://127.0.0.1:$port/admin/rollback" >/dev/null || echo "rollback failed" >&2
  done
) &
reloader=$!
run 16 "16 + 10 reload/rollback"
wait $reloader
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^braid_(batch_requests|batch_unique_users|batch_candidates)_(sum|count)|^braid_model_lifecycle_total' >&2

#!/usr/bin/env bash
# Apply throughput against the sandbox under a provider rate limit R.
#   scripts/bench-apply.sh [CARDS=1000] [R=100] [LATENCY=1s]
# Prints calls per issued card, cards/s against the physical limit R/2, utilisation of the request
# budget and cardform's peak memory. Builds the release binary first (BIN=path uses that one).
# STATE=postgres://…?state=NAME measures with the state in PostgreSQL (a fresh NAME each run).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
rate=${2:-100}
latency=${3:-1s}
port=${PORT:-18089}

if [ -z "${BIN:-}" ]; then cargo build --release --quiet; fi
bin=${BIN:-target/release/cardform}
work=$(mktemp -d)
state=${STATE:-$work/state.db}
trap 'kill $sandbox_pid 2>/dev/null || true; rm -rf "$work"' EXIT

"$bin" sandbox --listen "127.0.0.1:$port" --rate-limit "$rate" --order-latency "$latency" \
  --balance 100000000 >"$work/sandbox.log" 2>&1 &
sandbox_pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/__sandbox/inspect" >/dev/null && break; sleep 0.1; done

examples/gen-fleet.sh "$n" >"$work/fleet.yaml"
export CARDFORM_API_URL="http://127.0.0.1:$port" CARDFORM_API_KEY=sandbox-key CARDFORM_API_SECRET=sandbox-secret

"$bin" --state "$state" init >/dev/null
curl -sf "http://127.0.0.1:$port/__sandbox/inspect" >"$work/before.json"
start=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$work/maxrss" "$bin" --state "$state" apply -f "$work/fleet.yaml" \
  --auto-approve --rate "$rate" --parallelism "${PARALLELISM:-128}" >"$work/apply.log" 2>&1 || {
  echo "apply failed:"; tail -20 "$work/apply.log"; exit 1; }
end=$(date +%s.%N)
curl -sf "http://127.0.0.1:$port/__sandbox/inspect" >"$work/after.json"

python3 - "$n" "$rate" "$start" "$end" "$(cat "$work/maxrss")" "$work/before.json" "$work/after.json" <<'PY'
import json, sys
n, rate, start, end, rss = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
before, after = (json.load(open(p)) for p in sys.argv[6:8])
calls = {k: after["calls"].get(k, 0) - before["calls"].get(k, 0) for k in after["calls"]}
total = sum(calls.values())
useful = calls.get("cards/create", 0) + n  # one create and one finishing check per card
secs = end - start
print(f"cards                 {n}")
print(f"wall time             {secs:.2f} s")
print(f"calls by endpoint     {json.dumps({k: v for k, v in sorted(calls.items()) if v})}")
print(f"calls per card        {total / n:.2f}")
print(f"cards/s               {n / secs:.1f}  (physical limit R/2 = {rate / 2:.1f}: {100 * n / secs / (rate / 2):.0f}%)")
print(f"request budget used   {100 * total / (rate * secs):.0f}% of R x time; useful calls {100 * min(useful, total) / max(total, 1):.0f}%")
print(f"peak memory (RSS)     {rss / 1024:.1f} MiB")
PY

#!/usr/bin/env bash
# Top-up throughput against the sandbox under a provider rate limit R (sliding window).
#   scripts/bench-topups.sh [CARDS=300] [R=100] [LATENCY=1s]
# Issues CARDS cards first, then applies a payroll CSV of one top-up per card with --rate R, and
# prints top-ups/s against the physical limit R/2 (a top-up costs a `cards/topup` and an
# `orders/check`), calls per top-up and 429s. Builds the release binary first (BIN=path uses that one).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-300}
rate=${2:-100}
latency=${3:-1s}
port=${PORT:-18090}
if [ -z "${BIN:-}" ]; then cargo build --release --quiet; fi
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release/cardform}
work=$(mktemp -d)
sandbox_pid=""
trap '[ -n "$sandbox_pid" ] && kill $sandbox_pid 2>/dev/null; rm -rf "$work"' EXIT
examples/gen-fleet.sh "$n" >"$work/fleet.yaml"
export CARDFORM_API_URL="http://127.0.0.1:$port" CARDFORM_API_KEY=sandbox-key CARDFORM_API_SECRET=sandbox-secret
"$bin" sandbox --listen "127.0.0.1:$port" --rate-limit "$rate" --order-latency "$latency" \
  --balance 100000000 >"$work/sandbox.log" 2>&1 &
sandbox_pid=$!
for _ in $(seq 50); do curl -sf "$CARDFORM_API_URL/__sandbox/inspect" >/dev/null && break; sleep 0.1; done
state=$work/state.db
"$bin" --state "$state" init >/dev/null
"$bin" --state "$state" apply -f "$work/fleet.yaml" --auto-approve --rate "$rate" >/dev/null 2>&1
# One top-up of 50.00 per declared card, keyed by the fleet's own card keys.
python3 - "$work/fleet.yaml" >"$work/payroll.csv" <<'PY'
import re, sys
print("key,topup_id,amount")
for key in re.findall(r"key: ([^,}\s]+)", open(sys.argv[1]).read()):
    print(f"{key},bench,50.00")
PY
curl -sf "$CARDFORM_API_URL/__sandbox/inspect" >"$work/before.json"
start=$(date +%s.%N)
"$bin" --state "$state" apply -f "$work/fleet.yaml" -f "$work/payroll.csv" --auto-approve \
  --rate "$rate" >"$work/apply.log" 2>&1 || { tail -20 "$work/apply.log"; exit 1; }
end=$(date +%s.%N)
curl -sf "$CARDFORM_API_URL/__sandbox/inspect" >"$work/after.json"
python3 - "$n" "$rate" "$start" "$end" "$work/before.json" "$work/after.json" <<'PY'
import json, sys
n, rate, start, end = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
before, after = (json.load(open(p)) for p in sys.argv[5:7])
calls = sum(after["calls"].values()) - sum(before["calls"].values())
limited = after["rate_limited"] - before["rate_limited"]
topups = after["calls"].get("cards/topup", 0) - before["calls"].get("cards/topup", 0)
secs = end - start
print(f"{n} top-ups at R={rate:g}: {secs:.2f} s, {n / secs:.1f} top-ups/s = {100 * n / secs / (rate / 2):.0f}% of R/2, "
      f"{calls / n:.2f} calls per top-up ({topups} cards/topup), {limited} answered 429")
PY

#!/usr/bin/env bash
# Apply throughput against the sandbox under a provider rate limit R, for each limit shape.
#   scripts/bench-apply.sh [CARDS=1000] [R=100] [LATENCY=1s] [SHAPES=sliding,fixed,bucket] [MODES=rate,discover]
# MODES: "rate" runs apply with --rate R, "discover" without (the limit is learnt from 429s).
# Prints one row per shape and mode: cards/s against the physical limit R/2 (each card costs a
# create and a status check), calls per issued card, 429s, and cardform's peak memory.
# Builds the release binary first (BIN=path uses that one). PARALLELISM defaults to max(128, 2R):
# a card is in flight for about 1.1–1.6 s at a 1 s order latency, and all of a short run's creates
# should be able to go out before the first checks fall due.
# STATE=postgres://…?state=NAME measures with the state in PostgreSQL (a fresh NAME each run).
# COMPLETED_AT=precise,omitted,on-read,seconds runs each shape and mode against a sandbox that gives
# orders' end time that way (--completed-at; default precise). SCHEDULE=1s,200ms@10s,1s@20s gives
# the sandbox a --latency-schedule (LATENCY is then the latency before its first step).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
rate=${2:-100}
latency=${3:-1s}
shapes=${4:-sliding,fixed,bucket}
modes=${5:-rate,discover}
port=${PORT:-18089}
parallelism=${PARALLELISM:-$((2 * rate > 128 ? 2 * rate : 128))}

if [ -z "${BIN:-}" ]; then cargo build --release --quiet; fi
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release/cardform}
work=$(mktemp -d)
sandbox_pid=""
trap '[ -n "$sandbox_pid" ] && kill $sandbox_pid 2>/dev/null; rm -rf "$work"' EXIT

examples/gen-fleet.sh "$n" >"$work/fleet.yaml"
export CARDFORM_API_URL="http://127.0.0.1:$port" CARDFORM_API_KEY=sandbox-key CARDFORM_API_SECRET=sandbox-secret

completed_ats=${COMPLETED_AT:-precise}
schedule_arg=()
[ -n "${SCHEDULE:-}" ] && schedule_arg=(--latency-schedule "$SCHEDULE")

printf '%-8s %-9s %-9s %6s %7s %8s %6s %10s %6s %6s %9s\n' \
  shape mode completed cards secs cards/s %R/2 calls/card 429s %429 peakRSS
run=0
for completed_at in ${completed_ats//,/ }; do
for shape in ${shapes//,/ }; do
  for mode in ${modes//,/ }; do
    run=$((run + 1))
    "$bin" sandbox --listen "127.0.0.1:$port" --rate-limit "$rate" --rate-limit-shape "$shape" \
      --order-latency "$latency" --completed-at "$completed_at" "${schedule_arg[@]}" \
      --balance 100000000 >"$work/sandbox.log" 2>&1 &
    sandbox_pid=$!
    for _ in $(seq 50); do curl -sf "$CARDFORM_API_URL/__sandbox/inspect" >/dev/null && break; sleep 0.1; done

    state=${STATE:-$work/state-$run.db}
    "$bin" --state "$state" init >/dev/null
    curl -sf "$CARDFORM_API_URL/__sandbox/inspect" >"$work/before.json"
    rate_arg=()
    [ "$mode" = rate ] && rate_arg=(--rate "$rate")
    start=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$work/maxrss" "$bin" --state "$state" apply -f "$work/fleet.yaml" \
      --auto-approve "${rate_arg[@]}" --parallelism "$parallelism" >"$work/apply.log" 2>&1 || {
      echo "apply failed ($shape, $mode, completed_at $completed_at):"; tail -20 "$work/apply.log"; exit 1; }
    end=$(date +%s.%N)
    curl -sf "$CARDFORM_API_URL/__sandbox/inspect" >"$work/after.json"
    kill "$sandbox_pid"; wait "$sandbox_pid" 2>/dev/null || true
    sandbox_pid=""

    python3 - "$shape" "$mode" "$completed_at" "$n" "$rate" "$start" "$end" "$(cat "$work/maxrss")" \
      "$work/before.json" "$work/after.json" <<'PY'
import json, sys
shape, mode, completed_at = sys.argv[1], sys.argv[2], sys.argv[3]
n, rate, start, end, rss = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7]), int(sys.argv[8])
before, after = (json.load(open(p)) for p in sys.argv[9:11])
calls = sum(after["calls"].get(k, 0) - before["calls"].get(k, 0) for k in after["calls"])
limited = after["rate_limited"] - before["rate_limited"]
issued = sum(c["count"] for c in after["issue_orders"]) - sum(c["count"] for c in before["issue_orders"])
assert issued == n, f"{issued} cards issued, expected {n}"
secs = end - start
cps = n / secs
print(f"{shape:<8} {mode:<9} {completed_at:<9} {n:>6} {secs:>7.2f} {cps:>8.1f} {100 * cps / (rate / 2):>5.0f}% "
      f"{calls / n:>10.2f} {limited:>6} {100 * limited / max(calls, 1):>5.1f}% {rss / 1024:>6.1f} MiB")
PY
  done
done
done

#!/usr/bin/env bash
# Peak memory of `cardform apply` as the plan grows: for each size N, a plan of N new cards is
# applied against a fast sandbox until the first APPLIED cards are issued, then apply is
# interrupted (Ctrl-C: it stops starting work and finishes what is in flight).
#   scripts/bench-apply-memory.sh [SIZES=10000,100000,1000000] [APPLIED=10000]
# Prints per size: cards issued, seconds, cardform's peak RSS, and the state's bytes per issued
# card (the SQLite file after the run, checkpointed). Flat memory means the peak does not grow
# with N beyond what the plan itself holds. Builds the release binary first (BIN=path uses that
# one).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${1:-10000,100000,1000000}
applied=${2:-10000}
port=${PORT:-18090}

if [ -z "${BIN:-}" ]; then cargo build --release --quiet; fi
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release/cardform}
work=$(mktemp -d)
sandbox_pid=""
apply_pid=""
trap '[ -n "$apply_pid" ] && kill $apply_pid 2>/dev/null; [ -n "$sandbox_pid" ] && kill $sandbox_pid 2>/dev/null; rm -rf "$work"' EXIT
export CARDFORM_API_URL="http://127.0.0.1:$port" CARDFORM_API_KEY=sandbox-key CARDFORM_API_SECRET=sandbox-secret

issued() {
  curl -sf "$CARDFORM_API_URL/__sandbox/inspect" |
    python3 -c 'import json,sys; print(sum(c["count"] for c in json.load(sys.stdin)["issue_orders"]))'
}

printf '%9s %8s %7s %10s %11s\n' planned issued secs peakRSS state/card
for n in ${sizes//,/ }; do
  examples/gen-fleet.sh "$n" >"$work/fleet.yaml"
  "$bin" sandbox --listen "127.0.0.1:$port" --state "$work/sandbox-$n.db" --rate-limit 100000 \
    --order-latency 50ms --balance 1000000000 >"$work/sandbox.log" 2>&1 &
  sandbox_pid=$!
  for _ in $(seq 50); do curl -sf "$CARDFORM_API_URL/__sandbox/inspect" >/dev/null && break; sleep 0.1; done
  state=$work/state-$n.db
  "$bin" --state "$state" init >/dev/null
  start=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$work/maxrss" "$bin" --state "$state" apply -f "$work/fleet.yaml" \
    --auto-approve --parallelism 256 >"$work/apply.log" 2>&1 &
  time_pid=$!
  apply_pid=$(pgrep -P "$time_pid" -n || true)
  while kill -0 "$time_pid" 2>/dev/null; do
    [ -z "$apply_pid" ] && apply_pid=$(pgrep -P "$time_pid" -n || true)
    if [ "$n" -gt "$applied" ] && [ "$(issued)" -ge "$applied" ]; then
      kill -INT "$apply_pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  wait "$time_pid" 2>/dev/null || true
  apply_pid=""
  end=$(date +%s.%N)
  done_cards=$(issued)
  kill "$sandbox_pid"; wait "$sandbox_pid" 2>/dev/null || true
  sandbox_pid=""
  # A file left whole by apply; `state list` would be another open, so read its size directly.
  bytes=$(stat -c %s "$state")
  rss=$(grep -E '^[0-9]+$' "$work/maxrss" | tail -1)
  python3 -c "import sys; n,d,s,e,r,b=map(float,sys.argv[1:]); print(f'{int(n):>9} {int(d):>8} {e-s:>7.1f} {r/1024:>6.1f} MiB {b/max(d,1):>7.0f} B')" \
    "$n" "$done_cards" "$start" "$end" "$rss" "$bytes"
  [ -n "${KEEP:-}" ] && cp "$state" "$KEEP-$n.db"
done

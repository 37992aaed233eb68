#!/usr/bin/env bash
# `cardform serve` throughput against the sandbox under a provider rate limit R, with orders
# completed by polling and by the provider's webhooks.
#   STATE=postgres://USER:PW@HOST:PORT/DB scripts/bench-webhooks.sh [CARDS=1000] [R=100] [LATENCY=1s] [MODES=polling,webhooks]
# serve keeps its state in PostgreSQL only: STATE names a database (each run gets a fresh
# `?state=NAME` schema in it). Prints one row per mode: cards/s of the first reconcile (from
# serve's own "reconcile started"/"reconcile finished" log lines) against R, provider calls per
# card (every call the sandbox counted, subscriptions and plan reads included), 429s, and what
# the sandbox delivered. Goal with webhooks: >= 90 % of R, <= 1.1 calls a card.
# Builds the release binary first (BIN=path uses that one).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
rate=${2:-100}
latency=${3:-1s}
modes=${4:-polling,webhooks}
port=${PORT:-18091}
serve_port=${SERVE_PORT:-18092}
: "${STATE:?set STATE to a postgres:// URL of a database serve may create states in}"

if [ -z "${BIN:-}" ]; then cargo build --release --quiet; fi
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release/cardform}
work=$(mktemp -d)
sandbox_pid=""
serve_pid=""
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null
  [ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/cards"
examples/gen-fleet.sh "$n" >"$work/cards/fleet.yaml"
export CARDFORM_API_URL="http://127.0.0.1:$port" CARDFORM_API_KEY=sandbox-key CARDFORM_API_SECRET=sandbox-secret
export CARDFORM_SERVE_TOKEN=bench-token-0123456789abcdef
sep='?'
case "$STATE" in *\?*) sep='&' ;; esac

printf '%-9s %6s %7s %8s %5s %10s %6s %10s %8s\n' mode cards secs cards/s %R calls/card 429s delivered checks
for mode in ${modes//,/ }; do
  "$bin" sandbox --listen "127.0.0.1:$port" --rate-limit "$rate" --order-latency "$latency" \
    --balance 100000000 >"$work/sandbox.log" 2>&1 &
  sandbox_pid=$!
  for _ in $(seq 50); do curl -sf "$CARDFORM_API_URL/__sandbox/inspect" >/dev/null && break; sleep 0.1; done

  state="$STATE${sep}state=bench_${mode}_$$"
  "$bin" --state "$state" init >/dev/null
  public=()
  [ "$mode" = webhooks ] && public=(--public-url "http://127.0.0.1:$serve_port")
  "$bin" --state "$state" serve --listen "127.0.0.1:$serve_port" -f "$work/cards" --rate "$rate" \
    "${public[@]}" >/dev/null 2>"$work/serve.log" &
  serve_pid=$!
  for _ in $(seq 1200); do grep -q '"reconcile finished"' "$work/serve.log" && break; sleep 0.25; done
  curl -sf "$CARDFORM_API_URL/__sandbox/inspect" >"$work/after.json"
  kill -TERM "$serve_pid"; wait "$serve_pid" 2>/dev/null || true
  serve_pid=""
  kill "$sandbox_pid"; wait "$sandbox_pid" 2>/dev/null || true
  sandbox_pid=""

  python3 - "$mode" "$n" "$rate" "$work/serve.log" "$work/after.json" <<'PY'
import json, sys
from datetime import datetime
mode, n, rate, log, after = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
lines = [json.loads(l) for l in open(log) if l.startswith("{")]
ts = lambda msg: next(datetime.fromisoformat(l["ts"].replace("Z", "+00:00")) for l in lines if l.get("msg") == msg)
secs = (ts("reconcile finished") - ts("reconcile started")).total_seconds()
a = json.load(open(after))
issued = sum(c["count"] for c in a["issue_orders"])
assert issued == n and all(c["count"] == 1 for c in a["issue_orders"]), f"{issued} cards issued, expected {n} once each"
calls = sum(a["calls"].values())
cps = n / secs
print(f"{mode:<9} {n:>6} {secs:>7.2f} {cps:>8.1f} {100 * cps / rate:>4.0f}% {calls / n:>10.2f} "
      f"{a['rate_limited']:>6} {a['webhooks']['delivered']:>10} {a['calls'].get('orders/check', 0):>8}")
PY
done

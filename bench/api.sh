#!/usr/bin/env bash
# GET /api/v1/jobs/{id} on `docpipe serve` (auth, rate limit, SQLite, envelope) next to a bare
# axum handler, both on loopback in the same run, with wrk at 64 connections. Prints
# requests/s, p99 latency and the ratio. Needs wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
cargo build --release --quiet --bin docpipe --example bare_axum -p docpipe-cli -p docpipe-api
T=${CARGO_TARGET_DIR:-target}/release
HOME_DIR=$(mktemp -d)
cleanup() { kill "${SERVE_PID:-}" "${BARE_PID:-}" 2>/dev/null || true; rm -rf "$HOME_DIR"; }
trap cleanup EXIT

KEY=$("$T/docpipe" --home "$HOME_DIR" keys create bench --rate-limit 1000000000)
"$T/docpipe" --home "$HOME_DIR" serve --bind 127.0.0.1:0 > "$HOME_DIR/serve.out" 2>/dev/null &
SERVE_PID=$!
"$T/examples/bare_axum" > "$HOME_DIR/bare.out" &
BARE_PID=$!
for _ in $(seq 100); do
  [ -s "$HOME_DIR/serve.out" ] && [ -s "$HOME_DIR/bare.out" ] && break
  sleep 0.1
done
SERVE_URL=$(sed -n 's/^docpipe listening on //p' "$HOME_DIR/serve.out")
BARE_URL=$(sed -n 's/^listening on //p' "$HOME_DIR/bare.out")

# One real job to read.
B64=$(base64 -w0 fixtures/invoices/EN16931_Einfach.pdf)
printf '{"document":{"content_base64":"%s","filename":"a.pdf"}}' "$B64" > "$HOME_DIR/body.json"
JOB=$(curl -s -H "x-api-key: $KEY" -H 'content-type: application/json' \
  --data-binary @"$HOME_DIR/body.json" "$SERVE_URL/api/v1/jobs" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["job_id"])')

run() { # url [header]
  wrk -t2 -c"$CONNS" -d"$DURATION" --latency ${2:+-H "$2"} "$1" 2>&1
}
rps() { awk '/Requests\/sec/ {print $2}'; }
p99() { awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}'; }

# Alternate the two servers for ROUNDS rounds and report each one's median round, so a
# burst of other load on the machine moves both figures rather than one.
ROUNDS=${ROUNDS:-3}
BARE_RPS_ALL=(); BARE_P99_ALL=(); OURS_RPS_ALL=(); OURS_P99_ALL=(); RATIO_ALL=()
for r in $(seq "$ROUNDS"); do
  BARE=$(run "$BARE_URL/api/v1/jobs/$JOB")
  OURS=$(run "$SERVE_URL/api/v1/jobs/$JOB" "x-api-key: $KEY")
  BARE_RPS_ALL+=("$(echo "$BARE" | rps)"); BARE_P99_ALL+=("$(echo "$BARE" | p99)")
  OURS_RPS_ALL+=("$(echo "$OURS" | rps)"); OURS_P99_ALL+=("$(echo "$OURS" | p99)")
  RATIO_ALL+=("$(python3 -c "print(f'{float(\"${OURS_RPS_ALL[-1]}\")/float(\"${BARE_RPS_ALL[-1]}\"):.3f}')")")
  echo "round $r: ratio ${RATIO_ALL[-1]}x: bare ${BARE_RPS_ALL[-1]} req/s (p99 ${BARE_P99_ALL[-1]} ms), docpipe ${OURS_RPS_ALL[-1]} req/s (p99 ${OURS_P99_ALL[-1]} ms)"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
BARE_RPS=$(median "${BARE_RPS_ALL[@]}"); BARE_P99=$(median "${BARE_P99_ALL[@]}")
OURS_RPS=$(median "${OURS_RPS_ALL[@]}"); OURS_P99=$(median "${OURS_P99_ALL[@]}")
echo "bare axum handler:            ${BARE_RPS} req/s, p99 ${BARE_P99} ms (median of $ROUNDS)"
echo "docpipe GET /api/v1/jobs/{id}: ${OURS_RPS} req/s, p99 ${OURS_P99} ms (median of $ROUNDS)"
echo "ratio (docpipe / bare): $(median "${RATIO_ALL[@]}")x, the median round's (target >= 0.5x, p99 < 5 ms at $CONNS connections)"

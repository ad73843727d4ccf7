#!/usr/bin/env bash
# Chaos run of `docpipe serve` on 127.0.0.1: N jobs (default 1,000) created with
# Idempotency-Keys (some repeated), the server SIGKILLed at random moments (at least 5) and
# restarted on the same data folder, `docpipe jobs list` reading alongside. Then every
# invariant is checked (bench/chaos.py lists them); prints the figures, exits 1 on any
# violation. Options are passed to bench/chaos.py: -n JOBS, -k KILLS, -c CLIENTS, --seed S,
# --fault-probability P (transient stage faults on top). DOCPIPE_BIN=path skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DOCPIPE_BIN:-}" ]; then
  cargo build --release --quiet --bin docpipe -p docpipe-cli
  DOCPIPE_BIN=${CARGO_TARGET_DIR:-target}/release/docpipe
fi
exec python3 bench/chaos.py --bin "$DOCPIPE_BIN" "$@"

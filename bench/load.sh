#!/usr/bin/env bash
# Load on `docpipe serve` on 127.0.0.1: 10,000 job creates from 64 concurrent clients, 10%
# repeating an earlier Idempotency-Key. Checks 0 lost, 0 duplicates, every answer
# 202/409/429/503 in the JSON envelope; prints the answer counts and the server's RSS before,
# at peak and after the load settles (limit 200 MiB). Options are passed to bench/load.py:
# -n REQUESTS, -c CLIENTS, --dup-rate R, --rss-limit-mib M. DOCPIPE_BIN=path skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DOCPIPE_BIN:-}" ]; then
  cargo build --release --quiet --bin docpipe -p docpipe-cli
  DOCPIPE_BIN=${CARGO_TARGET_DIR:-target}/release/docpipe
fi
exec python3 bench/load.py --bin "$DOCPIPE_BIN" "$@"

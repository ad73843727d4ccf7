#!/usr/bin/env bash
# Synth check for the CDK app: installs the pinned packages (npm ci), runs the stack's synth-time
# guards (test/stack.test.ts: an unmapped ${...} placeholder or a missing bootstrap fails the
# synth), synthesizes the dev stack with the real CLI into a temp folder (the app's `tsc`
# type-checks first) and asserts on the template (check-template.mjs): 11 arm64/provided.al2023
# functions, the state machine ships pipeline.asl.json unchanged with every ${...} placeholder
# substituted by a function's ARN and every state present, 5 tables, 2 buckets, queues with
# dead-letter queues, the event bus and its rules, alarms, ...
# Needs Node 20+ and the npm registry; no AWS credentials, no Rust build, no network otherwise.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"
start=$SECONDS

node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "infra/cdk/check.sh: Node 20+ needed, found $(node --version)" >&2
  exit 1
fi

npm_flags=(--no-audit --no-fund)
npm_cache="$(npm config get cache 2>/dev/null || true)"
if [ -n "$npm_cache" ] && [ -d "$npm_cache/_cacache" ]; then npm_flags+=(--prefer-offline); fi
npm ci "${npm_flags[@]}" >/dev/null

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# The functions' code: target/lambda/<binary>/bootstrap from `cargo lambda build --release --arm64`.
binaries=(ingest ocr extract verify finalize record-failure api publish-events deliver-webhooks intake reconcile)
# (cargo writes to $CARGO_TARGET_DIR when set, as .ci/run does; a relative one is taken from the repo root.)
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$repo/$target_dir" ;; esac
lambda_dir="$target_dir/lambda"
lambdas="$lambda_dir"
for b in "${binaries[@]}"; do
  if [ ! -f "$lambda_dir/$b/bootstrap" ]; then lambda_dir=""; break; fi
done
if [ -z "$lambda_dir" ]; then
  # SYNTH-ONLY STAND-INS: target/lambda/* is not built here, so each function gets a
  # placeholder `bootstrap` that just exits 1. They live only in this temp dir, which is
  # removed on exit; they are never deployed (check.sh only synthesizes).
  lambda_dir="$tmp/lambda"
  lambdas="placeholder bootstraps"
  for b in "${binaries[@]}"; do
    mkdir -p "$lambda_dir/$b"
    printf '#!/bin/sh\n# synth-only stand-in written by infra/cdk/check.sh; not a real function\nexit 1\n' \
      >"$lambda_dir/$b/bootstrap"
    chmod +x "$lambda_dir/$b/bootstrap"
  done
fi

# The guards' test runner output stays in a file (printed on failure), so that its TAP totals are
# not taken for the closing lines of a larger run (scripts/test.sh).
./node_modules/.bin/tsx --test test/stack.test.ts >"$tmp/test.log" 2>&1 || {
  cat "$tmp/test.log" >&2
  echo "infra/cdk/check.sh: stack tests failed" >&2
  exit 1
}
tests_passed="$(sed -n 's/^# pass //p' "$tmp/test.log")"

export CDK_DISABLE_VERSION_CHECK=true CDK_DISABLE_CLI_TELEMETRY=true
./node_modules/.bin/cdk synth -c env=dev -c "lambdaDir=$lambda_dir" --quiet --no-notices \
  --output "$tmp/cdk.out" >"$tmp/synth.log" 2>&1 || {
  cat "$tmp/synth.log" >&2
  echo "infra/cdk/check.sh: cdk synth failed" >&2
  exit 1
}

summary="$(node check-template.mjs "$tmp/cdk.out" docpipe-dev "$repo/statemachine/pipeline.asl.json")"
echo "$summary; $tests_passed stack tests; code: $lambdas; $((SECONDS - start)) s"

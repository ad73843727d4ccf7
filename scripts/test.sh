#!/usr/bin/env bash
# Installs what the tests need (when missing) and runs every check: formatting, lints,
# the definition linter and the whole test suite. This is the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif have sudo; then sudo "$@"; else "$@"; fi; }

# poppler-utils: the reference text extractor the PDF tests and the benchmark compare with.
if ! have pdftotext; then
  echo "== installing poppler-utils"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null
fi

# Tesseract 5: the raster OCR engine for scanned invoices (the scan tests skip without it).
if ! have tesseract; then
  echo "== installing tesseract-ocr"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu >/dev/null
fi

# Chromium and its WebDriver: tests/console.rs drives the operator console headless (a
# Google Chrome with its chromedriver already installed does as well).
if ! have chromedriver || { ! have chromium && ! have google-chrome; }; then
  echo "== installing chromium and chromium-driver"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# python3 (standard library only): the chaos and load drivers that tests/reliability.rs runs.
if ! have python3; then
  echo "== installing python3"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null
fi

echo "== cargo fmt"
cargo fmt --all -- --check

# The AWS crates (SDK clients, Lambda functions) build in their own target dir and are
# checked by scripts/aws-checks.sh, which runs after this script.
aws_excluded=(--exclude docpipe-aws --exclude docpipe-aws-mock-tests --exclude docpipe-functions --exclude docpipe-fn-api)

echo "== cargo clippy"
cargo clippy --workspace "${aws_excluded[@]}" --all-targets --locked -- -D warnings

echo "== core depends on no cloud SDK and no runtime"
if cargo tree -p docpipe-core --edges normal --prefix none | grep -E '^(aws-|tokio )'; then
  echo "docpipe-core must not depend on these" >&2
  exit 1
fi

echo "== the Lambda functions link no SQLite, PDF or image engine"
for p in docpipe-functions docpipe-fn-api; do
  if cargo tree -p "$p" --edges normal --prefix none --locked | grep -E '^(rusqlite|libsqlite3-sys|lopdf|image|imageproc) '; then
    echo "$p must not depend on these" >&2
    exit 1
  fi
done

if have npx; then
  echo "== asl-validator on statemachine/pipeline.asl.json"
  npx --yes asl-validator@4 --no-arn-check --json-path statemachine/pipeline.asl.json
fi

# The CDK edition of the stack (infra/cdk): npm ci, synth, assertions (~20 s). The workflow's
# cdk job runs it on GitHub, so it is skipped there.
if have npx && [ "${GITHUB_ACTIONS:-}" != true ]; then
  echo "== cdk synth (infra/cdk)"
  infra/cdk/check.sh
fi

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace "${aws_excluded[@]}" --locked --no-fail-fast
  cargo test --workspace "${aws_excluded[@]}" --locked --doc
else
  cargo test --workspace "${aws_excluded[@]}" --locked --no-fail-fast
fi

echo "== AWS: linters, moto-backed adapter tests, Lambda builds"
# Includes the Lambda release builds (cargo lambda; ~18 min on a cold 2-core machine without
# debug info, minutes with a kept target dir). DOCPIPE_LAMBDA_BUILD=0 skips them.
if [ "${DOCPIPE_LAMBDA_BUILD:-1}" = 0 ]; then ./scripts/aws-checks.sh --no-build; else ./scripts/aws-checks.sh; fi

#!/usr/bin/env bash
# Cold start of every Lambda bootstrap: init time (spawn to the first request for an event,
# against a local Lambda Runtime API, with moto for Parameter Store and the tables) and
# peak RSS after one event, as bench/lambda_init.py measures them.
#   bench/lambda_init.sh [DIR] [--runs N] [--check]
# DIR: built bootstraps (default: a release build for this machine's architecture, made
# here stripped and without debug info, as the arm64 deploy build is). arm64 bootstraps run
# only on an arm64 machine (or under qemu-user, whose figures do not count); on x86-64 this
# measures the same code built for x86-64.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=""
rest=()
for arg in "$@"; do
  case "$arg" in
    --runs|--check|[0-9]*) rest+=("$arg") ;;
    *) if [ -z "$dir" ]; then dir="$arg"; else rest+=("$arg"); fi ;;
  esac
done

venv_dir="${DOCPIPE_VENV_DIR:-$HOME/.cache/docpipe-venv}"
python="$venv_dir/moto/bin/python"
if [ ! -x "$python" ]; then
  echo "moto's venv is missing: run scripts/aws-checks.sh once (it installs $venv_dir/moto)" >&2
  exit 2
fi

if [ -z "$dir" ]; then
  export CARGO_TARGET_DIR="${DOCPIPE_LAMBDA_BENCH_TARGET_DIR:-$HOME/.cache/docpipe-target-lambda-native}"
  export CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols
  echo "== cargo build --release (docpipe-functions, docpipe-fn-api) into $CARGO_TARGET_DIR"
  cargo build --release --locked -p docpipe-functions -p docpipe-fn-api
  dir="$CARGO_TARGET_DIR/release"
fi
echo "== $(uname -m), bootstraps in $dir"
"$python" bench/lambda_init.py "$dir" "${rest[@]}"

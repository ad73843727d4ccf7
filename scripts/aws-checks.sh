#!/usr/bin/env bash
# The AWS side's checks, for .ci/run (after scripts/test.sh) or by hand:
#   1. Python tools in venvs under $DOCPIPE_VENV_DIR (default ~/.cache/docpipe-venv):
#      moto[server] (the adapter tests start it themselves), cfn-lint, aws-sam-cli,
#      cargo-lambda. Installed once; later runs only check they are there.
#   2. cfn-lint and `sam validate --lint` on infra/template.yaml (offline, no credentials).
#   3. The AWS crates' tests against moto (DOCPIPE_REQUIRE_MOTO=1: no silent skip) and the
#      recorded-response tests (among them: every function's IAM grants against its code's
#      SDK calls, /health on moto, Parameter Store and Secrets Manager refresh on a virtual
#      clock, scripts/aws_smoke.py on recorded answers), in their own target dir so the SDK
#      build never holds the main target dir's lock.
#   4. `cargo lambda build --release` of every function: arm64 when the aarch64 target is
#      installed (else x86-64), with the bootstrap sizes printed.
# Options: --no-build skips step 4 (~18 min on a cold 2-core machine, minutes when kept).
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done

venv_dir="${DOCPIPE_VENV_DIR:-$HOME/.cache/docpipe-venv}"
export DOCPIPE_VENV_DIR="$venv_dir"
export SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
mkdir -p "$venv_dir"

ensure_venv() { # name, probe binary, pip requirements...
  local name="$1" probe="$2"; shift 2
  if [ ! -x "$venv_dir/$name/bin/$probe" ]; then
    echo "== installing $* into $venv_dir/$name"
    flock "$venv_dir/.$name.lock" sh -c "
      test -x '$venv_dir/$name/bin/$probe' || {
        python3 -m venv '$venv_dir/$name' &&
        '$venv_dir/$name/bin/pip' install -q $(printf "'%s' " "$@"); }"
  fi
}

ensure_venv moto moto_server 'moto[server]==5.2.5'
ensure_venv tools cargo-lambda 'cfn-lint==1.58.*' 'aws-sam-cli==1.170.*' 'cargo-lambda==1.9.*'
export PATH="$venv_dir/tools/bin:$PATH"

echo "== cfn-lint infra/template.yaml"
cfn-lint infra/template.yaml

echo "== sam validate --lint"
sam validate --lint --template infra/template.yaml

export CARGO_TARGET_DIR="${DOCPIPE_AWS_TARGET_DIR:-$HOME/.cache/docpipe-target-aws}"
export DOCPIPE_REQUIRE_MOTO=1
aws_packages=(-p docpipe-aws -p docpipe-functions -p docpipe-fn-api -p docpipe-aws-mock-tests)

echo "== clippy (AWS crates, and the docpipe binary with its aws feature: keys create --aws)"
cargo clippy "${aws_packages[@]}" --all-targets --locked -- -D warnings
cargo clippy -p docpipe-cli --features docpipe-cli/aws --bins --locked -- -D warnings

echo "== tests (AWS crates: moto, recorded responses, Lambda runtime API)"
cargo test "${aws_packages[@]}" --locked --no-fail-fast

echo "== Lambda Runtime API smoke (ingest, api and the events-in-and-out binaries against moto)"
cargo build -p docpipe-functions -p docpipe-fn-api --locked
"$venv_dir/moto/bin/python" functions/tests/runtime_api_smoke.py "$CARGO_TARGET_DIR/debug"

if [ "$build" = 1 ]; then
  arch=--arm64
  if ! rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$'; then
    rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || arch=--x86-64
  fi
  echo "== cargo lambda build --release $arch"
  export CARGO_TARGET_DIR="${DOCPIPE_LAMBDA_TARGET_DIR:-$HOME/.cache/docpipe-target-lambda}"
  # Lambda bootstraps ship without debug info or symbols (smaller zip, faster cold start).
  export CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols
  cargo lambda build --release "$arch" -p docpipe-functions -p docpipe-fn-api
  for f in "$CARGO_TARGET_DIR"/lambda/*/bootstrap; do
    printf '%-16s %6s KiB\n' "$(basename "$(dirname "$f")")" "$(( $(stat -c %s "$f") / 1024 ))"
  done
fi
echo "aws checks: ok"

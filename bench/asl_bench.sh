#!/usr/bin/env bash
# docpipe-asl executions/s next to moto's ASL interpreter on the same 10-state Pass chain,
# printed as ratios from one run. Needs moto in a venv: .venv/bin/python (created here if
# missing: pip install 'moto[stepfunctions]==5.2.5' boto3).
# Usage: bench/asl_bench.sh [N_OURS] [N_MOTO]
set -euo pipefail
cd "$(dirname "$0")/.."
N_OURS=${1:-20000}
N_MOTO=${2:-300}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/docpipe-target}
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import moto' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install -q 'moto[stepfunctions]==5.2.5' boto3
fi
MOTO_SCRIPT=${MOTO_SCRIPT:-../shared/bench/moto_sfn_bench.py}
moto_out=$(.venv/bin/python "$MOTO_SCRIPT" "$N_MOTO" --seq 2>/dev/null)
moto_eps=$(printf '%s\n' "$moto_out" | sed -n 's/^sequential: .*(\([0-9.]*\) exec\/s.*/\1/p')
ours=$(cargo run -q --release -p docpipe-asl --example asl_bench -- "$N_OURS" statemachine/pipeline.asl.json)
printf '%s\n' "$ours"
python3 - "$moto_eps" <<PY
import json, sys
moto = float(sys.argv[1])
print(f"moto sequential, 10-state Pass chain: {moto:.1f} exec/s")
for line in """$ours""".splitlines():
    r = json.loads(line)
    ratio = f"{r['per_second'] / moto:,.0f}x moto" if r["bench"].startswith("chain10") else "(moto cannot run it: no Lambda)"
    print(f"{r['bench']:<36} {r['per_second']:>12,.0f} exec/s  {ratio}")
PY

#!/usr/bin/env bash
# docpipe-asl executions/s next to moto's ASL interpreter, from one run:
#   - a 10-state Pass chain in memory and with the durable SQLite journal,
#   - statemachine/pipeline.asl.json with no-op tasks in memory and journaled,
#   - moto 5.2.5 (its vendored LocalStack interpreter) on the same 10-state chain,
# and the ratios. moto cannot run the pipeline (its tasks are Lambda functions), so the
# pipeline rows are compared with moto's chain figure only as a reference.
#
# The example is built once (`cargo build --release --example asl_bench`), then its binary
# runs; moto runs from a venv: .venv, else $HOME/.cache/docpipe-venv, else one is created
# there with `pip install 'moto[server]==5.2.5'`.
#
# Usage: bench/asl_bench.sh [N_OURS] [N_MOTO]   (defaults 20000 and 100; moto does ~15/s)
set -euo pipefail
cd "$(dirname "$0")/.."
N_OURS=${1:-20000}
N_MOTO=${2:-100}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/docpipe-target}
MOTO_SCRIPT=${MOTO_SCRIPT:-../shared/bench/moto_sfn_bench.py}

t_start=$(date +%s)

# 1. Build once; cargo names the binary it built.
bin=$(cargo build -q --release --example asl_bench -p docpipe-asl --message-format=json |
  python3 -c '
import json, sys
exe = ""
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "asl_bench" and m.get("executable"):
        exe = m["executable"]
print(exe)')
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  echo "asl_bench.sh: cargo did not produce the asl_bench example" >&2
  exit 1
fi
t_built=$(date +%s)

# 2. docpipe-asl (one JSON object per measurement).
ours=$("$bin" "$N_OURS" statemachine/pipeline.asl.json)
t_ours=$(date +%s)

# 3. moto on the same chain.
py=""
for cand in .venv/bin/python "$HOME/.cache/docpipe-venv/bin/python"; do
  if [ -x "$cand" ] && "$cand" -c 'import moto, boto3' 2>/dev/null; then
    py=$cand
    break
  fi
done
if [ -z "$py" ]; then
  python3 -m venv "$HOME/.cache/docpipe-venv"
  "$HOME/.cache/docpipe-venv/bin/pip" install -q 'moto[server]==5.2.5' boto3
  py="$HOME/.cache/docpipe-venv/bin/python"
fi
moto_out=$("$py" "$MOTO_SCRIPT" "$N_MOTO" --seq 2>/dev/null)
t_moto=$(date +%s)

python3 - "$moto_out" "$ours" "$("$py" -c 'import moto; print(moto.__version__)')" \
  "$((t_built - t_start))" "$((t_ours - t_built))" "$((t_moto - t_ours))" <<'PY'
import json, re, sys

moto_out, ours, moto_version, t_build, t_ours, t_moto = sys.argv[1:7]
m = re.search(r"^sequential: (\d+) executions .*? in ([0-9.]+) s", moto_out, re.M)
if not m:
    sys.exit(f"asl_bench.sh: cannot read moto's output:\n{moto_out}")
moto = int(m.group(1)) / float(m.group(2))

rows = [json.loads(line) for line in ours.splitlines() if line.strip()]
labels = {
    "chain10/in-memory": "10-state Pass chain, in memory",
    "chain10/memory-journal": "10-state Pass chain, memory journal (64 concurrent)",
    "chain10/sqlite-journal/sequential": "10-state Pass chain, SQLite journal, sequential",
    "chain10/sqlite-journal": "10-state Pass chain, SQLite journal (256 concurrent)",
    "pipeline/in-memory": "pipeline.asl.json (no-op tasks), in memory, one at a time",
    "pipeline/in-memory/concurrent": "pipeline.asl.json (no-op tasks), in memory (64 concurrent)",
    "pipeline/sqlite-journal": "pipeline.asl.json (no-op tasks), SQLite journal (256 concurrent)",
}
print(f"moto {moto_version} (sequential), 10-state Pass chain: {moto:,.1f} exec/s "
      f"({m.group(1)} executions in {float(m.group(2)):.2f} s)")
print()
print(f"{'docpipe-asl':<66} {'exec/s':>10}  {'vs moto chain':>13}")
for r in rows:
    label = labels.get(r["bench"], r["bench"])
    ratio = f"{r['per_second'] / moto:,.0f}x"
    if r["bench"].startswith("pipeline"):
        ratio += " (*)"
    print(f"{label:<66} {r['per_second']:>10,.0f}  {ratio:>13}")
print()
print("(*) moto cannot run the pipeline (Lambda tasks): ratio against moto's chain figure.")
print(f"time: build {t_build} s, docpipe-asl {t_ours} s, moto {t_moto} s")
PY

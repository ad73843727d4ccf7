#!/usr/bin/env bash
# End to end, as a user runs it: `docpipe run` (release build, one command) against
# invoice2data 1.0.1 (Python + pdftotext, installed by pip into a venv this script creates)
# on the same 220 text PDFs: the 11 invoices of ../shared/data/invoices/invoice2data, 20
# copies each under distinct names, dedupe off. Both whole processes are measured in the
# same run: wall time, CPU seconds (user + system, children included) and peak RSS; prints
# docs/s and CPU-ms per document of each and the ratios.
#
#   bench/e2e.sh            the comparison above
#   bench/e2e.sh --scale    docpipe alone on 100, 1,000 and 10,000 distinct generated
#                           invoices (bench/gen_invoices.py): docs/s and peak RSS of each
#
# Environment: DOCPIPE_SHARED (default ../shared), E2E_VENV (default
# $HOME/.cache/docpipe-e2e-venv), CARGO_TARGET_DIR, E2E_COPIES (default 20),
# E2E_SCALE (default "100 1000 10000").
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
shared="${DOCPIPE_SHARED:-../shared}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/docpipe-target}"

mode=compare
if [[ "${1:-}" == "--scale" ]]; then mode=scale; fi

bin=$(cargo build -q --release -p docpipe-cli --message-format=json | python3 -c '
import json, sys
exe = ""
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "docpipe" and m.get("executable"):
        exe = m["executable"]
print(exe)')
[[ -x "$bin" ]] || { echo "e2e.sh: cargo did not produce the docpipe binary" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# measure LABEL DOCS CMD...: runs CMD with stdout to a file, prints one JSON line.
measure() {
  python3 - "$@" <<'PY'
import json, resource, subprocess, sys, time
label, docs, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
before = resource.getrusage(resource.RUSAGE_CHILDREN)
t = time.perf_counter()
with open(f"/dev/null", "wb") as out:
    rc = subprocess.call(cmd, stdout=out)
wall = time.perf_counter() - t
after = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
print(json.dumps({"what": label, "docs": docs, "rc": rc, "wall_s": round(wall, 3),
                  "cpu_s": round(cpu, 3), "docs_per_s": round(docs / wall, 1),
                  "cpu_ms_per_doc": round(1000 * cpu / docs, 2),
                  "peak_rss_mib": round(after.ru_maxrss / 1024, 1)}))
PY
}

field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

if [[ $mode == scale ]]; then
  sizes=${E2E_SCALE:-"100 1000 10000"}
  max=0; for n in $sizes; do (( n > max )) && max=$n; done
  python3 bench/gen_invoices.py "$work/gen" "$max"
  declare -A rate
  for n in $sizes; do
    mkdir -p "$work/set-$n"
    for f in $(ls "$work/gen" | head -n "$n"); do ln -s "$work/gen/$f" "$work/set-$n/$f"; done
    line=$(DOCPIPE_DEDUPE_TTL_SECS=0 measure "docpipe run, $n distinct invoices" "$n" \
      "$bin" --home "$work/home-$n" run --json --out "$work/results-$n" "$work/set-$n")
    echo "$line"
    rate[$n]=$(field "$line" docs_per_s)
    rm -rf "$work/home-$n" "$work/results-$n"
  done
  if [[ -n "${rate[1000]:-}" && -n "${rate[10000]:-}" ]]; then
    awk -v a="${rate[10000]}" -v b="${rate[1000]}" \
      'BEGIN { printf "docs/s at 10,000 / docs/s at 1,000: %.2f\n", a / b }'
  fi
  exit 0
fi

# The 220 files.
copies=${E2E_COPIES:-20}
mkdir -p "$work/files"
n=0
for f in "$shared"/data/invoices/invoice2data/*.pdf; do
  stem=$(basename "$f" .pdf)
  for ((i = 1; i <= copies; i++)); do cp "$f" "$work/files/$stem-$i.pdf"; n=$((n + 1)); done
done
[[ $n -gt 0 ]] || { echo "e2e.sh: no invoices under $shared/data/invoices/invoice2data" >&2; exit 1; }
mapfile -t files < <(ls -d "$work"/files/*.pdf)

# invoice2data in its venv.
venv="${E2E_VENV:-$HOME/.cache/docpipe-e2e-venv}"
if [[ ! -x "$venv/bin/invoice2data" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'invoice2data==1.0.1'
fi
command -v pdftotext >/dev/null || { echo "e2e.sh: pdftotext (poppler-utils) is not installed" >&2; exit 1; }

ours=$(DOCPIPE_DEDUPE_TTL_SECS=0 measure "docpipe run" "$n" \
  "$bin" --home "$work/home" run --json --out "$work/results" "${files[@]}")
echo "$ours"
theirs=$(measure "invoice2data 1.0.1" "$n" \
  "$venv/bin/invoice2data" --input-reader pdftotext --output-format json \
  --output-name "$work/i2d.json" "${files[@]}")
echo "$theirs"
awk -v a="$(field "$ours" docs_per_s)" -v b="$(field "$theirs" docs_per_s)" \
  -v c="$(field "$ours" cpu_ms_per_doc)" -v d="$(field "$theirs" cpu_ms_per_doc)" \
  'BEGIN { printf "docs/s docpipe / invoice2data: %.1fx\nCPU per document, invoice2data / docpipe: %.1fx\n", a / b, d / c }'

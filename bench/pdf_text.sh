#!/usr/bin/env bash
# PDF text layer throughput: our in-process extractor (release build) against poppler's
# `pdftotext -bbox` over the same files, the same number of times. Prints pages/s of each
# and the ratio (ours / pdftotext; above 1 means we are faster).
#
#   bench/pdf_text.sh [-n REPS] [FILE.pdf ...]
# Without files it uses the Factur-X invoices and the valid PDFs of the shared data set.
set -euo pipefail
cd "$(dirname "$0")/.."

reps=5
if [[ "${1:-}" == "-n" ]]; then reps="$2"; shift 2; fi
files=("$@")
if [[ ${#files[@]} -eq 0 ]]; then
  shared="${DOCPIPE_SHARED:-../shared}"
  mapfile -t files < <(ls "$shared"/data/invoices/zugferd/fx/*.pdf "$shared"/data/robustness/valid-pdfs/*/*.pdf 2>/dev/null)
fi
[[ ${#files[@]} -gt 0 ]] || { echo "no PDF files given or found" >&2; exit 1; }
command -v pdftotext >/dev/null || { echo "pdftotext (poppler-utils) is not installed" >&2; exit 1; }

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/root/.cache/docpipe-target}"
cargo build --release -q -p docpipe-pdf --example pdf_text_bench
bench="$CARGO_TARGET_DIR/release/examples/pdf_text_bench"

# Files both engines read; pages as poppler counts them.
ok_files=()
pages=0
for f in "${files[@]}"; do
  if n=$(pdftotext -bbox "$f" - 2>/dev/null | grep -c '<page ' ); then
    ok_files+=("$f"); pages=$((pages + n))
  fi
done

echo "files: ${#ok_files[@]}, pages per pass: $pages, passes: $reps"
ours=$("$bench" -n "$reps" "${ok_files[@]}")
echo "ours:      $ours"
ours_pps=$(sed -n 's/.*pages_per_s=\([0-9.]*\).*/\1/p' <<<"$ours")

start=$(date +%s.%N)
for ((i = 0; i < reps; i++)); do
  for f in "${ok_files[@]}"; do pdftotext -bbox "$f" - >/dev/null 2>&1 || true; done
done
end=$(date +%s.%N)
poppler_pps=$(awk -v p="$pages" -v r="$reps" -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", p * r / (e - s) }')
echo "pdftotext: pages=$((pages * reps)) seconds=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }') pages_per_s=$poppler_pps"
awk -v a="$ours_pps" -v b="$poppler_pps" 'BEGIN { printf "ratio ours/pdftotext: %.2fx\n", a / b }'

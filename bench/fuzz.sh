#!/usr/bin/env bash
# The property-based fuzz tests, longer than in the suite: the ASL parser, paths,
# intrinsics and JSONata (crates/asl/tests/fuzz.rs), the e-invoice reader
# (crates/invoice/tests/einvoice_fuzz.rs), the PDF reader (crates/pdf/tests/pdf_fuzz.rs) and the API's request parsing
# (crates/api/tests/request_fuzz.rs). CASES (default 20000) per property, with
# a random seed each run (printed; DOCPIPE_FUZZ_SEED=N repeats one; the suite uses a fixed one).
set -euo pipefail
cd "$(dirname "$0")/.."
export PROPTEST_CASES=${CASES:-20000}
export DOCPIPE_FUZZ_SEED=${DOCPIPE_FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
echo "fuzz: $PROPTEST_CASES cases per property, API seed $DOCPIPE_FUZZ_SEED"
cargo test --release -p docpipe-asl --test fuzz -- --nocapture
cargo test --release -p docpipe-invoice --test einvoice_fuzz -- --nocapture
cargo test --release -p docpipe-pdf --test pdf_fuzz -- --nocapture
cargo test --release -p docpipe-api --test request_fuzz -- --nocapture

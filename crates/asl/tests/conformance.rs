//! Runs the recorded-on-AWS conformance corpus (`../shared/asl-conformance` next to the
//! workspace) and holds the pass count to a ratchet.

use std::path::PathBuf;

/// Raise this when more cases pass; never lower it.
const MIN_PASSING: usize = 747;

#[test]
fn conformance_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/asl-conformance");
    if !dir.is_dir() {
        eprintln!(
            "conformance corpus not found at {}: skipping",
            dir.display()
        );
        return;
    }
    let started = std::time::Instant::now();
    let summary = match docpipe_asl::conformance::run_dir(&dir) {
        Ok(s) => s,
        Err(e) => panic!("cannot read the corpus: {e}"),
    };
    for f in summary.failures() {
        eprintln!("FAIL {} [{}]: {}", f.name, f.category, f.reason);
    }
    for (cat, c) in &summary.by_category {
        eprintln!("{cat:>20}: {:>3}/{:<3}", c.passed, c.total);
    }
    eprintln!(
        "conformance: {}/{} passed in {:.1?}",
        summary.passed,
        summary.total,
        started.elapsed()
    );
    assert!(
        summary.passed >= MIN_PASSING,
        "{} cases passed, the ratchet requires {MIN_PASSING}",
        summary.passed
    );
}

/// `ASL_CASE=<case name> cargo test -p docpipe-asl --test conformance one_case -- --nocapture`
/// prints one case's actual result next to its expectation.
#[test]
fn one_case() {
    let Ok(name) = std::env::var("ASL_CASE") else {
        return;
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/asl-conformance/cases")
        .join(name);
    let report = docpipe_asl::conformance::run_case(&dir);
    eprintln!("passed: {}\nreason: {}", report.passed, report.reason);
    eprintln!(
        "actual: {}",
        serde_json::to_string_pretty(&report.actual).unwrap_or_default()
    );
}

//! Tests that need something outside the repository (the shared data set beside the clone,
//! poppler's `pdftotext`) skip without it and say so loudly on stderr. In CI (`CI` set, as
//! `.ci/run` has it) nothing may be missing: such a test fails instead of skipping.

/// Reports that the calling test cannot run because `missing` is absent; panics in CI.
pub(super) fn skip(missing: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    assert!(!ci, "this test needs {missing}, which CI must provide");
    eprintln!("\n!!! SKIPPED: this test needs {missing} !!!\n");
}

//! The PDF text worker as a standalone binary, for this crate's tests and benchmarks; the
//! docpipe CLI runs the same entry point under `docpipe __worker pdf-text`.

fn main() -> std::process::ExitCode {
    docpipe_pdf::worker::run_pdf_text_worker()
}

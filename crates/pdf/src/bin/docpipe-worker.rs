//! The PDF text worker as a standalone binary, for this crate's tests and benchmarks; the
//! docpipe CLI runs the same entry point under `docpipe __worker pdf-text`. Arguments are
//! `name=value` limits (`memory_bytes`, `cpu_seconds`, `max_documents`).

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    docpipe_pdf::worker::run_pdf_text_worker_with_args(&args)
}

//! The `docpipe` binary: runs the pipeline on local files, inspects jobs and executions.
//! With `__worker` as its first argument it is the bounded document-parsing worker that
//! the pipeline starts for each untrusted document.

mod commands;
mod settings;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::settings::Settings;

/// mimalloc: the engine and the API allocate many small, short-lived objects (JSON values,
/// history events), where it is markedly faster than the system allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "docpipe",
    version,
    about = "Document pipeline: verified invoice data from PDFs"
)]
struct Cli {
    /// Data folder (database and objects); overrides DOCPIPE_HOME and docpipe.toml.
    #[arg(long, global = true)]
    home: Option<PathBuf>,
    /// Settings file (default: ./docpipe.toml if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Submit files as jobs and run the pipeline on all of them.
    Run(commands::run::RunArgs),
    /// Run the pipeline over a folder of documents with answers and score each field.
    Eval(commands::eval::EvalArgs),
    /// Inspect jobs.
    #[command(subcommand)]
    Jobs(commands::jobs::JobsCommand),
    /// Inspect state-machine executions.
    #[command(subcommand)]
    Executions(commands::jobs::ExecutionsCommand),
    /// Job status events (`job.status.v1`).
    #[command(subcommand)]
    Events(commands::events::EventsCommand),
    /// Remove what has outlived the retention settings (`--dry-run` to preview).
    Gc(commands::gc::GcArgs),
    /// Serve the HTTP API with the embedded pipeline behind it.
    Serve(commands::serve::ServeArgs),
    /// A drop folder: each new file becomes a job, then moves to done/ or failed/.
    Watch(commands::watch::WatchArgs),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(commands::keys::KeysCommand),
    /// The Amazon States Language interpreter: conformance corpus, single executions.
    #[command(subcommand)]
    Asl(commands::asl::AslCommand),
    /// Dollars: estimate a workload on AWS, or price a job's counters.
    #[command(subcommand)]
    Cost(commands::cost::CostCommand),
    /// Floor plans: render r2v annotations, score room detection, detect rooms in a plan.
    #[command(subcommand)]
    Floorplan(commands::floorplan::FloorplanCommand),
}

fn main() -> ExitCode {
    if let Some(code) = commands::worker_main() {
        return code;
    }
    let cli = Cli::parse();
    let mut settings = match Settings::load(cli.config.as_deref(), std::env::vars()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("docpipe: settings: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Some(home) = cli.home {
        settings.home = home;
    }
    commands::init_logging(&settings.log);
    // The blocking pool runs SQLite calls and file I/O. Bounded, so a burst of requests
    // queues there instead of starting hundreds of threads (each one leaves its own
    // allocator heap behind when it exits, memory that then stays with the process);
    // kept alive, so the threads of one burst serve the next.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(64)
        .thread_keep_alive(std::time::Duration::from_secs(600))
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("docpipe: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => commands::run::run(&settings, args).await,
            Command::Eval(args) => commands::eval::eval(&settings, args).await,
            Command::Jobs(cmd) => commands::jobs::jobs(&settings, cmd).await,
            Command::Executions(cmd) => commands::jobs::executions(&settings, cmd).await,
            Command::Events(cmd) => commands::events::events(&settings, cmd).await,
            Command::Gc(args) => commands::gc::gc(&settings, args).await,
            Command::Serve(args) => commands::serve::serve(&settings, args).await,
            Command::Watch(args) => commands::watch::watch(&settings, args).await,
            Command::Keys(cmd) => commands::keys::keys(&settings, cmd).await,
            Command::Asl(cmd) => commands::asl::asl(cmd).await,
            Command::Floorplan(cmd) => commands::floorplan::floorplan(cmd).await,
            Command::Cost(cmd) => commands::cost::cost(&settings, cmd).await,
        }
    });
    match result {
        Ok(code) => code,
        // The reader of our output left (`| head`): nothing more to say to anyone.
        Err(e) if commands::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("docpipe: {e:#}");
            ExitCode::from(2)
        }
    }
}

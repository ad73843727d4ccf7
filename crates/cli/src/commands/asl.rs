//! `docpipe asl ...`: the Amazon States Language interpreter on its own: run the
//! conformance corpus, or run one definition with Lambda stubs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use docpipe_asl::clock::SystemClock;
use docpipe_asl::conformance::{self, LambdaStubs};
use docpipe_asl::{Definition, ExecutionOptions, ExecutionOutcome, Runner};
use serde_json::{Map, Value, json};

use super::outln;

#[derive(Debug, Subcommand)]
pub(crate) enum AslCommand {
    /// Run a conformance corpus (a folder of case folders, or one with `cases/`); the
    /// last line is `N passed, M failed`.
    Conformance(ConformanceArgs),
    /// Run one execution of a definition and print `{"status", "output"}` or
    /// `{"status", "error", "cause"}`.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ConformanceArgs {
    /// The corpus folder.
    pub dir: PathBuf,
    /// Print the summary (per category and per case) as JSON before the last line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The definition (ASL JSON).
    pub definition: PathBuf,
    /// The execution input (JSON file; default `{}`).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Lambda stubs: function ARN -> behaviour, as the corpus' `lambdas.json`.
    #[arg(long)]
    pub lambda_stubs: Option<PathBuf>,
    /// Run on virtual time: waits, retries and timeouts take no real time.
    #[arg(long)]
    pub virtual_time: bool,
    /// Add the execution history (GetExecutionHistory-shaped events).
    #[arg(long)]
    pub history: bool,
    /// Execution name.
    #[arg(long, default_value = "execution")]
    pub name: String,
}

pub(crate) async fn asl(cmd: AslCommand) -> Result<ExitCode> {
    match cmd {
        AslCommand::Conformance(args) => conformance_cmd(args).await,
        AslCommand::Run(args) => run_cmd(args).await,
    }
}

async fn conformance_cmd(args: ConformanceArgs) -> Result<ExitCode> {
    let dir = args.dir.clone();
    // Each case runs on its own thread; keep the runtime's workers free.
    let summary = tokio::task::spawn_blocking(move || conformance::run_dir(&dir))
        .await
        .context("the conformance run panicked")?
        .with_context(|| format!("cannot read the corpus at {}", args.dir.display()))?;
    let failed = summary.total - summary.passed;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?)?;
    } else {
        for f in summary.failures() {
            outln!("FAIL {} [{}]: {}", f.name, f.category, f.reason)?;
        }
        for (cat, c) in &summary.by_category {
            outln!("{cat:>20}: {:>3}/{:<3}", c.passed, c.total)?;
        }
    }
    outln!("{} passed, {failed} failed", summary.passed)?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn read_json(path: &Path, what: &str) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("the {what} {} is not JSON", path.display()))
}

async fn run_cmd(args: RunArgs) -> Result<ExitCode> {
    let text = std::fs::read_to_string(&args.definition)
        .with_context(|| format!("cannot read {}", args.definition.display()))?;
    let definition = match Definition::parse(&text) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("docpipe: {}: {e}", args.definition.display());
            return Ok(ExitCode::from(2));
        }
    };
    let input = match &args.input {
        Some(p) => read_json(p, "input")?,
        None => Value::Object(Map::new()),
    };
    let stubs = match &args.lambda_stubs {
        Some(p) => match read_json(p, "Lambda stubs")? {
            Value::Object(o) => o,
            _ => anyhow::bail!("the Lambda stubs must be a JSON object"),
        },
        None => Map::new(),
    };
    let options = ExecutionOptions {
        name: args.name.clone(),
        ..ExecutionOptions::default()
    };
    let outcome: ExecutionOutcome = if args.virtual_time {
        // A week of real time is plenty for any definition on virtual time.
        conformance::run_virtual(
            definition,
            input,
            stubs,
            options,
            Duration::from_secs(7 * 24 * 3600),
        )
        .map_err(anyhow::Error::msg)?
    } else {
        let clock = Arc::new(SystemClock);
        let invoker = Arc::new(LambdaStubs::new(stubs, clock.clone()));
        Runner::new(invoker, clock)
            .run(&definition, input, options)
            .await
    };
    let mut view = conformance::outcome_view(&outcome);
    if args.history
        && let Some(o) = view.as_object_mut()
    {
        o.insert("history".into(), json!(outcome.history));
    }
    outln!("{}", serde_json::to_string_pretty(&view)?)?;
    Ok(
        if outcome.status == docpipe_asl::ExecutionStatus::Succeeded {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}

//! `docpipe run FILE...`: one job per file, all executed concurrently through the real
//! state machine, then a table (or JSON) of what came out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use docpipe_core::pricing::{PriceTable, PricingProfile, price_job};
use docpipe_core::{DocumentKind, Job, JobStatus};
use docpipe_local::embedded::Embedded;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use tokio::sync::Semaphore;

use super::outln;
use crate::settings::Settings;

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Documents to process (PDF, PNG, JPEG).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// What the documents are.
    #[arg(long, value_enum, default_value = "invoice")]
    pub kind: KindArg,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Folder for the `<job_id>.json` results (default: HOME/results).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Ignore embedded e-invoice XML: read the printed text only.
    #[arg(long)]
    pub no_embedded: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    Invoice,
    Blueprint,
}

impl From<KindArg> for DocumentKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Invoice => DocumentKind::Invoice,
            KindArg::Blueprint => DocumentKind::Blueprint,
        }
    }
}

/// One file's outcome, as `--json` prints it and as `<job_id>.json` stores it.
#[derive(Debug, Serialize)]
pub(crate) struct FileOutcome {
    pub file: String,
    pub job_id: Option<String>,
    pub status: JobStatus,
    pub error: Option<ErrorOut>,
    /// The invoice, or a blueprint's rooms.
    pub result: Option<serde_json::Value>,
    /// What the job cost on this host, in dollars, from its counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<docpipe_core::pricing::CostBreakdown>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ErrorOut {
    pub code: String,
    pub message: String,
}

pub(crate) async fn run(settings: &Settings, args: RunArgs) -> Result<ExitCode> {
    let mut settings = settings.clone();
    settings.embedded_xml &= !args.no_embedded;
    let settings = &settings;
    let pipeline = super::open_pipeline(settings)?;
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| settings.home.join("results"));
    docpipe_local::private_files::create_dir_all(&out_dir)
        .with_context(|| format!("creating {}", out_dir.display()))?;
    let kind = DocumentKind::from(args.kind);
    let bar = ProgressBar::new(args.files.len() as u64);
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let pricing = Arc::new(super::pricing_profile(settings));
    let permits = Arc::new(Semaphore::new(settings.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, file) in args.files.iter().enumerate() {
        let pipeline = pipeline.clone();
        let permits = Arc::clone(&permits);
        let file = file.clone();
        let bar = bar.clone();
        let pricing = Arc::clone(&pricing);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let outcome = process(&pipeline, &file, kind, &pricing).await;
            bar.inc(1);
            bar.set_message(file.display().to_string());
            (index, outcome)
        });
    }
    let mut outcomes: Vec<Option<FileOutcome>> = (0..args.files.len()).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (index, outcome) = joined.context("a job task panicked")?;
        outcomes[index] = Some(outcome);
    }
    bar.finish_and_clear();
    let outcomes: Vec<FileOutcome> = outcomes.into_iter().flatten().collect();

    for o in &outcomes {
        if let Some(id) = &o.job_id {
            let path = out_dir.join(format!("{id}.json"));
            docpipe_local::private_files::write(&path, &serde_json::to_vec_pretty(o)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&outcomes)?)?;
    } else {
        print_table(&outcomes)?;
        outln!("\nresults: {}", out_dir.display())?;
    }
    let any_failed = outcomes.iter().any(|o| o.status == JobStatus::Failed);
    Ok(if any_failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn process(
    pipeline: &Embedded,
    file: &Path,
    kind: DocumentKind,
    pricing: &PricingProfile,
) -> FileOutcome {
    let name = file.display().to_string();
    let job = match pipeline.submit_file(file, kind).await {
        Ok(job) => job,
        Err(e) => {
            return FileOutcome {
                file: name,
                job_id: None,
                status: JobStatus::Failed,
                error: Some(ErrorOut {
                    code: e.code.as_str().into(),
                    message: e.message,
                }),
                result: None,
                cost: None,
            };
        }
    };
    let finished = match pipeline.execute(&job.id).await {
        Ok(_) => pipeline.job(&job.id).await,
        Err(e) => Err(e),
    };
    match finished {
        Ok(job) => outcome_of(pipeline, name, job, pricing).await,
        Err(e) => FileOutcome {
            file: name,
            job_id: Some(job.id.to_string()),
            status: JobStatus::Failed,
            error: Some(ErrorOut {
                code: e.code.as_str().into(),
                message: e.message,
            }),
            result: None,
            cost: None,
        },
    }
}

async fn outcome_of(
    pipeline: &Embedded,
    file: String,
    job: Job,
    pricing: &PricingProfile,
) -> FileOutcome {
    let result = pipeline.result_json(&job).await.ok().flatten();
    let cost = price_job(PriceTable::builtin(), pricing, &job);
    FileOutcome {
        file,
        job_id: Some(job.id.to_string()),
        status: job.status,
        error: job.error.map(|e| ErrorOut {
            code: e.code.as_str().into(),
            message: e.message,
        }),
        result,
        cost: Some(cost),
    }
}

fn print_table(outcomes: &[FileOutcome]) -> std::io::Result<()> {
    let header = ["FILE", "STATUS", "INVOICE", "GROSS", "CURRENCY", "CHECKS"];
    let rows: Vec<[String; 6]> = outcomes
        .iter()
        .map(|o| {
            let r = o.result.as_ref();
            let field = |n: &str| {
                if n == "invoice_number"
                    && let Some(rooms) = r.and_then(|r| r["rooms"].as_array())
                {
                    return format!("{} rooms", rooms.len());
                }
                r.and_then(|r| r["fields"][n]["value"].as_str())
                    .map(str::to_owned)
                    .unwrap_or_else(|| "-".into())
            };
            let checks = match (r, &o.error) {
                (Some(r), _) => {
                    let checks = r["checks"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                    let passed = checks.iter().filter(|c| c["passed"] == true).count();
                    format!("{passed}/{} passed", checks.len())
                }
                (None, Some(e)) => e.code.clone(),
                (None, None) => "-".into(),
            };
            let file = Path::new(&o.file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| o.file.clone());
            [
                file,
                o.status.as_str().to_owned(),
                field("invoice_number"),
                field("gross_total"),
                field("currency"),
                checks,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(&format!("{cell:<w$}"));
        }
        outln!("{}", s.trim_end())
    };
    line(&header.map(String::from))?;
    for row in &rows {
        line(row)?;
    }
    Ok(())
}

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

use super::outln;
use crate::settings::Settings;

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Documents to process (PDF, PNG, JPEG); a folder stands for the files in it.
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
    /// Documents processed at once (default: the `concurrency` setting, twice the CPUs).
    #[arg(long)]
    pub concurrency: Option<usize>,
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
    if let Some(n) = args.concurrency {
        anyhow::ensure!(n > 0, "--concurrency must be at least 1");
        settings.concurrency = n;
    }
    let settings = &settings;
    let files = expand(&args.files)?;
    let pipeline = super::open_pipeline(settings)?;
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| settings.home.join("results"));
    docpipe_local::private_files::create_dir_all(&out_dir)
        .with_context(|| format!("creating {}", out_dir.display()))?;
    let kind = DocumentKind::from(args.kind);
    let bar = ProgressBar::new(files.len() as u64);
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    // At most `concurrency` documents in flight; each finished one is written out and
    // reduced to its table row at once, so memory does not grow with the number of files.
    let pricing = Arc::new(super::pricing_profile(settings));
    let mut output = Output::new(args.json);
    let mut rows: Vec<Row> = Vec::new();
    let mut any_failed = false;
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = files.iter().enumerate();
    loop {
        while tasks.len() < settings.concurrency {
            let Some((index, file)) = next.next() else {
                break;
            };
            let pipeline = pipeline.clone();
            let file = file.clone();
            let pricing = Arc::clone(&pricing);
            tasks.spawn(async move { (index, process(&pipeline, &file, kind, &pricing).await) });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (index, outcome) = joined.context("a job task panicked")?;
        bar.inc(1);
        bar.set_message(outcome.file.clone());
        if let Some(id) = &outcome.job_id {
            let path = out_dir.join(format!("{id}.json"));
            docpipe_local::private_files::write(&path, &serde_json::to_vec_pretty(&outcome)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        any_failed |= outcome.status == JobStatus::Failed;
        if args.json {
            output.push(index, serde_json::to_string_pretty(&outcome)?)?;
        } else {
            rows.push(Row::of(index, &outcome));
        }
    }
    bar.finish_and_clear();
    if args.json {
        output.finish()?;
    } else {
        rows.sort_by_key(|r| r.index);
        print_table(&rows)?;
        outln!("\nresults: {}", out_dir.display())?;
    }
    Ok(if any_failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The files to run: each argument that is a folder stands for the files directly in it
/// (sorted by name; hidden files and subfolders skipped).
fn expand(args: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for a in args {
        if a.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(a)
                .with_context(|| format!("reading {}", a.display()))?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()))
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| e.path())
                .collect();
            inside.sort();
            files.extend(inside);
        } else {
            files.push(a.clone());
        }
    }
    anyhow::ensure!(!files.is_empty(), "no files to run");
    Ok(files)
}

/// `--json`: the array printed element by element in the order of the files, as they
/// finish; only the elements waiting for an earlier file are held.
struct Output {
    json: bool,
    next: usize,
    waiting: std::collections::BTreeMap<usize, String>,
    first: bool,
}

impl Output {
    fn new(json: bool) -> Self {
        Self {
            json,
            next: 0,
            waiting: Default::default(),
            first: true,
        }
    }

    fn push(&mut self, index: usize, element: String) -> std::io::Result<()> {
        self.waiting.insert(index, element);
        while let Some(element) = self.waiting.remove(&self.next) {
            let lead = if self.first { "[\n" } else { ",\n" };
            self.first = false;
            let mut out = std::io::stdout().lock();
            std::io::Write::write_all(&mut out, lead.as_bytes())?;
            std::io::Write::write_all(&mut out, element.as_bytes())?;
            self.next += 1;
        }
        Ok(())
    }

    fn finish(self) -> std::io::Result<()> {
        if self.json {
            if self.first {
                outln!("[]")?;
            } else {
                outln!("\n]")?;
            }
        }
        Ok(())
    }
}

/// One line of the table: what is shown of a file's outcome.
struct Row {
    index: usize,
    cells: [String; 6],
}

impl Row {
    fn of(index: usize, o: &FileOutcome) -> Self {
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
        Self {
            index,
            cells: [
                file,
                o.status.as_str().to_owned(),
                field("invoice_number"),
                field("gross_total"),
                field("currency"),
                checks,
            ],
        }
    }
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

fn print_table(rows: &[Row]) -> std::io::Result<()> {
    let header = ["FILE", "STATUS", "INVOICE", "GROSS", "CURRENCY", "CHECKS"];
    let rows: Vec<&[String; 6]> = rows.iter().map(|r| &r.cells).collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
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
        line(&row[..])?;
    }
    Ok(())
}

//! `docpipe gc [--dry-run]`: removes from the data folder what has outlived the retention
//! settings (final jobs, documents and results, idempotency records, expired dedupe
//! entries, old events and deliveries), and nothing else.

use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::Args;
use docpipe_local::retention;

use super::outln;
use crate::settings::Settings;

#[derive(Debug, Args)]
pub(crate) struct GcArgs {
    /// Say what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Judge expiry as of this time (RFC 3339) instead of now: what a later sweep takes.
    #[arg(long)]
    pub as_of: Option<String>,
    /// The report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub(crate) async fn gc(settings: &Settings, args: GcArgs) -> Result<ExitCode> {
    let now: DateTime<Utc> = match &args.as_of {
        Some(t) => DateTime::parse_from_rfc3339(t)
            .with_context(|| format!("--as-of {t:?} is not an RFC 3339 time"))?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let pipeline = super::open_pipeline(settings)?;
    let report = retention::sweep(
        pipeline.store(),
        pipeline.objects(),
        &settings.retention,
        now,
        args.dry_run,
    )
    .await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    outln!(
        "{verb}: {} jobs, {} object folders, {} documents of final jobs, {} idempotency records, {} dedupe entries, {} events, {} deliveries",
        report.jobs.len(),
        report.object_folders.len(),
        report.documents_dropped.len(),
        report.idempotency_records,
        report.dedupe_entries,
        report.events,
        report.deliveries
    )?;
    for job in &report.jobs {
        outln!("job {job}")?;
    }
    for folder in &report.object_folders {
        outln!("objects {folder}")?;
    }
    for job in &report.documents_dropped {
        outln!("document of {job}")?;
    }
    Ok(ExitCode::SUCCESS)
}

//! `docpipe jobs list|show` and `docpipe executions history`: read the local store.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;
use docpipe_core::{DocumentKind, JobFilter, JobId, JobStatus, JobStore};
use serde_json::json;

use super::outln;
use crate::settings::Settings;

#[derive(Debug, Subcommand)]
pub(crate) enum JobsCommand {
    /// Jobs, newest first.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        cursor: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One job with its status history and result.
    Show { id: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ExecutionsCommand {
    /// The event history of a job's execution (execution name = job id).
    History { id: String },
}

pub(crate) async fn jobs(settings: &Settings, cmd: JobsCommand) -> Result<ExitCode> {
    let pipeline = super::open_pipeline(settings)?;
    match cmd {
        JobsCommand::List {
            status,
            kind,
            limit,
            cursor,
            json,
        } => {
            let status = match status {
                Some(s) => match JobStatus::parse(&s) {
                    Some(s) => Some(s),
                    None => bail!("unknown status {s:?}"),
                },
                None => None,
            };
            let kind = match kind {
                Some(k) => match DocumentKind::parse(&k) {
                    Some(k) => Some(k),
                    None => bail!("unknown kind {k:?} (invoice or blueprint)"),
                },
                None => None,
            };
            let page = pipeline
                .store()
                .list(&JobFilter {
                    status,
                    kind,
                    owner: None,
                    limit: Some(limit),
                    cursor,
                })
                .await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&page)?)?;
            } else {
                outln!(
                    "{:<34}  {:<12}  {:<9}  {:<25}  FILE",
                    "JOB",
                    "STATUS",
                    "KIND",
                    "CREATED"
                )?;
                for j in &page.jobs {
                    outln!(
                        "{:<34}  {:<12}  {:<9}  {:<25}  {}",
                        j.id,
                        j.status,
                        j.kind,
                        j.created_at.to_rfc3339(),
                        j.filename
                    )?;
                }
                if let Some(c) = page.next_cursor {
                    outln!("next page: --cursor '{c}'")?;
                }
            }
        }
        JobsCommand::Show { id } => {
            let id = JobId::parse(&id)?;
            let job = pipeline.store().get(&id).await?;
            let history = pipeline.store().history(&id).await?;
            let result = pipeline.result_json(&job).await?;
            let out = json!({ "job": job, "history": history, "result": result });
            outln!("{}", serde_json::to_string_pretty(&out)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn executions(settings: &Settings, cmd: ExecutionsCommand) -> Result<ExitCode> {
    let pipeline = super::open_pipeline(settings)?;
    match cmd {
        ExecutionsCommand::History { id } => {
            let Some(rec) = pipeline.store().execution(&id).await? else {
                bail!("no execution named {id}");
            };
            outln!("{}", serde_json::to_string_pretty(&rec)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! `docpipe events tail`: the outbox's `job.status.v1` events, one JSON line each, as they
//! are written (by this data folder's `serve`, `run` or `watch`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;
use docpipe_core::events::EventSink;
use docpipe_local::SqliteJobStore;

use super::outln;
use crate::settings::Settings;

#[derive(Debug, Subcommand)]
pub(crate) enum EventsCommand {
    /// Print events as they happen (CloudEvents JSON, one per line).
    Tail {
        /// Start from the oldest event kept rather than from now.
        #[arg(long)]
        all: bool,
        /// Print what is there and stop instead of waiting for more.
        #[arg(long)]
        no_follow: bool,
        /// Only events of this job.
        #[arg(long)]
        job: Option<String>,
    },
}

/// How often a follower looks for new events.
const POLL: Duration = Duration::from_millis(200);

pub(crate) async fn events(settings: &Settings, cmd: EventsCommand) -> Result<ExitCode> {
    let EventsCommand::Tail {
        all,
        no_follow,
        job,
    } = cmd;
    docpipe_local::private_files::create_dir_all(&settings.home)?;
    let store = SqliteJobStore::open(&settings.home.join("docpipe.db"))?;
    let mut after = if all { 0 } else { store.last_seq().await? };
    loop {
        let batch = store.events_after(after, 500).await?;
        for event in &batch {
            if job.as_deref().is_none_or(|j| j == event.job_id.as_str()) {
                outln!("{}", event.json)?;
            }
        }
        match batch.last() {
            Some(last) => after = last.seq,
            None if no_follow => return Ok(ExitCode::SUCCESS),
            None => tokio::time::sleep(POLL).await,
        }
    }
}

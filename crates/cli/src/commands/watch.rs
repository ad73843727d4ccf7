//! `docpipe watch DIR`: a drop folder. Each new file becomes one job; the file then goes to
//! `DIR/done/` or `DIR/failed/` as `{job_id}-{name}`, exactly once even across a kill.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use docpipe_core::DocumentKind;
use docpipe_local::embedded::Embedded;
use docpipe_local::watch::DropFolder;

use super::outln;
use crate::settings::Settings;

#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// The folder to watch.
    pub dir: PathBuf,
    /// Take what is there now and stop.
    #[arg(long)]
    pub once: bool,
    /// `invoice` or `blueprint`.
    #[arg(long, default_value = "invoice")]
    pub kind: String,
}

/// How often the folder is looked at.
pub(crate) const POLL: Duration = Duration::from_millis(500);

pub(crate) async fn watch(settings: &Settings, args: WatchArgs) -> Result<ExitCode> {
    let Some(kind) = DocumentKind::parse(&args.kind) else {
        bail!("unknown kind {:?} (invoice or blueprint)", args.kind);
    };
    let pipeline = super::open_pipeline(settings)?;
    // Jobs a previous run left unfinished resume as their files are taken again.
    let mut folder = DropFolder::new(pipeline, args.dir, kind)?;
    if args.once {
        report(&folder.scan(false).await?)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Files already there when the watch starts are complete.
    report(&folder.scan(false).await?)?;
    loop {
        tokio::time::sleep(POLL).await;
        report(&folder.scan(true).await?)?;
    }
}

fn report(picked: &[docpipe_local::watch::Picked]) -> Result<()> {
    for p in picked {
        outln!(
            "{} {} {} {}",
            p.status,
            p.job_id,
            p.file,
            p.moved_to.display()
        )?;
    }
    Ok(())
}

/// `docpipe serve`'s `watch_dir`: the same loop beside the server, until `stop`.
pub(crate) async fn watch_beside(
    pipeline: Embedded,
    dir: PathBuf,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut folder = match DropFolder::new(pipeline, dir, DocumentKind::Invoice) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "watch_dir");
            return;
        }
    };
    tokio::pin!(stop);
    let mut settled = false;
    loop {
        match folder.scan(settled).await {
            Ok(picked) => {
                for p in picked {
                    tracing::info!(job_id = %p.job_id, file = %p.file, status = %p.status, "drop-folder file");
                }
            }
            Err(e) => tracing::warn!(error = %e, "watch_dir scan"),
        }
        settled = true;
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

//! A drop folder: each new file becomes one job, runs, and is moved to `done/` or
//! `failed/` as `{job_id}-{name}`. Exactly once across crashes: the file's job id is
//! claimed first in the idempotency store (key: the file's name and sha256), the job is
//! created under it (conditionally), run (a journaled execution resumes), and only then is
//! the file moved; a restart at any point finds the same job.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use docpipe_core::keys::{IdempotencyRecord, IdempotencyStore};
use docpipe_core::ports::Result;
use docpipe_core::{DocumentKind, ErrorCode, JobId, JobStatus, StageError};
use sha2::{Digest, Sha256};

use crate::embedded::{Content, Embedded, Submission};

/// The idempotency owner of drop-folder files.
const OWNER: &str = "watch";

/// What became of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picked {
    pub file: String,
    pub job_id: JobId,
    pub status: JobStatus,
    /// Where the file is now.
    pub moved_to: PathBuf,
}

/// A watched folder.
pub struct DropFolder {
    pipeline: Embedded,
    dir: PathBuf,
    kind: DocumentKind,
    /// Files seen on the last scan with their size and modification time: a file is taken
    /// once it is unchanged between two scans (its writer is done).
    seen: HashMap<String, (u64, std::time::SystemTime)>,
}

impl DropFolder {
    pub fn new(pipeline: Embedded, dir: PathBuf, kind: DocumentKind) -> Result<Self> {
        for sub in ["done", "failed"] {
            crate::private_files::create_dir_all(&dir.join(sub)).map_err(|e| {
                StageError::unavailable(format!("creating {}/{sub}: {e}", dir.display()))
            })?;
        }
        Ok(Self {
            pipeline,
            dir,
            kind,
            seen: HashMap::new(),
        })
    }

    /// One scan. `settled`: take only files unchanged since the previous scan (a folder
    /// being written to); otherwise take every file there.
    pub async fn scan(&mut self, settled: bool) -> Result<Vec<Picked>> {
        let io = |e: std::io::Error| StageError::unavailable(format!("reading the folder: {e}"));
        let mut names = Vec::new();
        let mut now_seen = HashMap::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = entry.metadata().map_err(io)?;
            if !meta.is_file() || name.starts_with('.') {
                continue;
            }
            let stamp = (meta.len(), meta.modified().map_err(io)?);
            if !settled || self.seen.get(&name) == Some(&stamp) {
                names.push(name.clone());
            }
            now_seen.insert(name, stamp);
        }
        self.seen = now_seen;
        names.sort();
        let mut out = Vec::new();
        for name in names {
            out.extend(self.take(&name).await?);
        }
        Ok(out)
    }

    /// Makes (or finds) the file's job, runs it to its end and moves the file; `None`
    /// when the job is still running elsewhere (the file waits for the next scan).
    async fn take(&self, name: &str) -> Result<Option<Picked>> {
        let path = self.dir.join(name);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| StageError::unavailable(format!("reading {}: {e}", path.display())))?;
        let digest = hex::encode(Sha256::digest(&bytes));
        let store = self.pipeline.store();
        let key = format!("file\n{name}\n{digest}");
        let now = self.pipeline.ports().clock.now();
        let claim = IdempotencyRecord {
            owner: OWNER.to_owned(),
            key,
            request_hash: digest,
            job_id: JobId::generate(now),
            created_at: now,
        };
        let job_id = match store.put_if_absent(&claim).await? {
            Some(existing) => existing.job_id,
            None => claim.job_id,
        };
        let job = match self.pipeline.job(&job_id).await {
            Ok(job) => job,
            Err(e) if e.code == ErrorCode::JobNotFound => {
                let max = self.pipeline.ports().settings.max_document_bytes;
                let content = if bytes.len() as u64 > max {
                    Content::Oversize(bytes.len() as u64)
                } else {
                    Content::Bytes(bytes)
                };
                self.pipeline
                    .submit_as(
                        job_id.clone(),
                        Submission {
                            filename: name.to_owned(),
                            kind: self.kind,
                            content,
                            owner: None,
                            correlation_id: None,
                        },
                        true,
                    )
                    .await?
            }
            Err(e) => return Err(e),
        };
        if !job.status.is_final() {
            // Resumes a journaled execution, starts a queued job; a job already final
            // (another process ran it) is refused, which is fine.
            if let Err(e) = self.pipeline.execute(&job.id).await
                && e.code != ErrorCode::JobAlreadyCompleted
            {
                tracing::warn!(job_id = %job.id, error = %e, "drop-folder job");
            }
        }
        let job = self.pipeline.job(&job.id).await?;
        if !job.status.is_final() {
            return Ok(None);
        }
        let sub = if matches!(job.status, JobStatus::Completed | JobStatus::NeedsReview) {
            "done"
        } else {
            "failed"
        };
        let moved_to = self.dir.join(sub).join(format!("{}-{name}", job.id));
        move_file(&path, &moved_to)?;
        Ok(Some(Picked {
            file: name.to_owned(),
            job_id: job.id,
            status: job.status,
            moved_to,
        }))
    }
}

fn move_file(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| {
        StageError::unavailable(format!(
            "moving {} to {}: {e}",
            from.display(),
            to.display()
        ))
    })
}

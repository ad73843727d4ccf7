//! The embedded orchestrator: a fixed pool of workers executing jobs from a bounded queue.
//! A full queue refuses new work (`SERVICE_UNAVAILABLE`) rather than growing a backlog;
//! stopping a job aborts its running execution (StopExecution). On shutdown the pool
//! drains: no new job is taken, in-flight executions finish.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use docpipe_asl::StopHandle;
use docpipe_core::ports::Result;
use docpipe_core::{
    Admission, ErrorName, Job, JobFilter, JobId, JobStatus, JobStore, Orchestrator, StageError,
};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;

use crate::embedded::Embedded;

/// Shape of the pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    /// Executions at once.
    pub workers: usize,
    /// Jobs waiting for a worker, at most.
    pub queue: usize,
}

struct Shared {
    pipeline: Embedded,
    running: std::sync::Mutex<HashMap<JobId, StopHandle>>,
    draining: AtomicBool,
    /// Woken whenever an execution ends, so a drain waits without polling.
    ended: tokio::sync::Notify,
}

/// The pool; cheap to clone.
#[derive(Clone)]
pub struct EmbeddedOrchestrator {
    tx: mpsc::Sender<JobId>,
    shared: Arc<Shared>,
    workers: Arc<Mutex<JoinSet<()>>>,
}

impl EmbeddedOrchestrator {
    /// Starts `opts.workers` workers on the current runtime.
    pub fn start(pipeline: Embedded, opts: PoolOptions) -> Self {
        let (tx, rx) = mpsc::channel::<JobId>(opts.queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let shared = Arc::new(Shared {
            pipeline,
            running: std::sync::Mutex::new(HashMap::new()),
            draining: AtomicBool::new(false),
            ended: tokio::sync::Notify::new(),
        });
        let mut set = JoinSet::new();
        for _ in 0..opts.workers.max(1) {
            let rx = Arc::clone(&rx);
            let shared = Arc::clone(&shared);
            set.spawn(async move {
                loop {
                    let next = { rx.lock().await.recv().await };
                    let Some(job_id) = next else { break };
                    if shared.draining.load(Ordering::SeqCst) {
                        // Left queued in the store; picked up on the next start.
                        continue;
                    }
                    let stop = StopHandle::new();
                    {
                        let mut running = lock(&shared.running);
                        if running.contains_key(&job_id) {
                            // Queued twice: the execution that runs is the job's one.
                            continue;
                        }
                        running.insert(job_id.clone(), stop.clone());
                    }
                    if let Err(e) = shared.pipeline.execute_with_stop(&job_id, Some(stop)).await {
                        tracing::error!(job_id = %job_id, error = %e, "execution could not run");
                    }
                    lock(&shared.running).remove(&job_id);
                    shared.ended.notify_waiters();
                }
            });
        }
        Self {
            tx,
            shared,
            workers: Arc::new(Mutex::new(set)),
        }
    }

    /// Queues a job by id, waiting for room (used at start-up to pick up queued jobs).
    pub async fn enqueue_waiting(&self, job_id: JobId) -> Result<()> {
        self.tx
            .send(job_id)
            .await
            .map_err(|_| StageError::unavailable("the execution pool is shut down"))
    }

    /// Picks up what a previous process left behind, in one ordered pass: first a
    /// snapshot (executions unfinished in the journal, then every job in a non-final
    /// status, oldest first), taken before anything runs, then each job queued once. The
    /// worker that takes a job decides under the job's claim (see
    /// [`Embedded::execute_with_stop`]): resume the journaled execution, start the queued
    /// job, or fail a running job that has no journal. Returns how many jobs were queued;
    /// they are fed to the queue in the background as room frees up.
    pub async fn recover(&self) -> Result<usize> {
        let pipeline = &self.shared.pipeline;
        // Outcomes journaled but not recorded first: pruning drops their journal.
        pipeline.reconcile_executions().await?;
        pipeline.prune_journal();
        let mut seen = HashSet::new();
        let mut ids = Vec::new();
        for name in pipeline.unfinished().await? {
            if let Some(id) = docpipe_core::job::job_of_execution(&name)
                && seen.insert(id.clone())
            {
                ids.push(id);
            }
        }
        let mut waiting = Vec::new();
        for status in [
            JobStatus::Queued,
            JobStatus::Ingesting,
            JobStatus::Ocr,
            JobStatus::Extracting,
            JobStatus::Verifying,
        ] {
            let mut cursor = None;
            loop {
                let page = pipeline
                    .store()
                    .list(&JobFilter {
                        status: Some(status),
                        limit: Some(100),
                        cursor: cursor.clone(),
                        ..JobFilter::default()
                    })
                    .await?;
                waiting.extend(page.jobs.into_iter().map(|j| (j.created_at, j.id)));
                cursor = page.next_cursor;
                if cursor.is_none() {
                    break;
                }
            }
        }
        waiting.sort();
        for (_, id) in waiting {
            if seen.insert(id.clone()) {
                ids.push(id);
            }
        }
        let count = ids.len();
        let pool = self.clone();
        tokio::spawn(async move {
            for id in ids {
                if pool.enqueue_waiting(id).await.is_err() {
                    break;
                }
            }
        });
        Ok(count)
    }

    /// Jobs executing now.
    pub fn running(&self) -> usize {
        lock(&self.shared.running).len()
    }

    /// Stops taking jobs and waits up to `timeout` for in-flight executions to end; those
    /// still running then are aborted.
    pub async fn drain(&self, timeout: Duration) {
        self.shared.draining.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut workers = self.workers.lock().await;
        // Workers block on an empty queue; wake them by closing it from our side.
        let finished = tokio::time::timeout_at(deadline, async {
            loop {
                // Registered before looking, so an end between the look and the wait
                // still wakes it.
                let ended = self.shared.ended.notified();
                if lock(&self.shared.running).is_empty() {
                    break;
                }
                ended.await;
            }
        })
        .await;
        if finished.is_err() {
            for (id, stop) in lock(&self.shared.running).iter() {
                tracing::warn!(job_id = %id, "aborting an execution at shutdown");
                stop.stop(
                    Some(ErrorName::Shutdown.as_str().into()),
                    Some("the server shut down".into()),
                );
            }
        }
        workers.abort_all();
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait]
impl Orchestrator for EmbeddedOrchestrator {
    async fn start(&self, job: &Job) -> Result<()> {
        if self.shared.draining.load(Ordering::SeqCst) {
            return Err(StageError::unavailable("the server is shutting down"));
        }
        self.tx.try_send(job.id.clone()).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                StageError::unavailable("the execution queue is full; retry shortly")
            }
            mpsc::error::TrySendError::Closed(_) => {
                StageError::unavailable("the execution pool is shut down")
            }
        })
    }

    async fn admit(&self) -> Result<Admission> {
        if self.shared.draining.load(Ordering::SeqCst) {
            return Err(StageError::unavailable("the server is shutting down"));
        }
        let permit = self.tx.clone().try_reserve_owned().map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                StageError::unavailable("the execution queue is full; retry shortly")
            }
            mpsc::error::TrySendError::Closed(_) => {
                StageError::unavailable("the execution pool is shut down")
            }
        })?;
        Ok(Admission::holding(Box::new(permit)))
    }

    async fn start_admitted(&self, job: &Job, admission: Admission) -> Result<()> {
        match admission
            .into_room()
            .map(|room| room.downcast::<mpsc::OwnedPermit<JobId>>())
        {
            Some(Ok(permit)) => {
                permit.send(job.id.clone());
                Ok(())
            }
            _ => Orchestrator::start(self, job).await,
        }
    }

    async fn stop(&self, job: &Job, cause: &str) -> Result<()> {
        if let Some(stop) = lock(&self.shared.running).get(&job.id) {
            stop.stop(
                Some(ErrorName::Cancelled.as_str().into()),
                Some(cause.to_owned()),
            );
        }
        Ok(())
    }

    async fn health(&self) -> Result<()> {
        if self.tx.is_closed() || self.shared.draining.load(Ordering::SeqCst) {
            return Err(StageError::unavailable("the execution pool is not running"));
        }
        Ok(())
    }
}

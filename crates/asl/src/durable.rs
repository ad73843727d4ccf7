//! The durable runner: like [`crate::Runner`], but every transition is written to a
//! [`Journal`] before the runner acts on it, and [`DurableRunner::recover`] resumes every
//! unfinished execution of a journal after a crash.
//!
//! Order of work for each event: feed it to the core (pure), append the event (and the
//! `Finished` record if the core finished) to the journal, and only then perform the
//! actions (invoke tasks, start timers). Hence a task whose result is journaled is never
//! invoked again; a task that was in flight when the process died has no journaled
//! result and is invoked again on recovery (at-least-once, as on Step Functions).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use docpipe_core::Clock;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::execution::{Action, Completion, Event, Execution, OpId};
use crate::history::HistoryEvent;
use crate::journal::{Journal, JournalError, JournalRecord, Outstanding, PendingTask, replay};
use crate::model::Definition;
use crate::runner::{ExecutionOptions, ExecutionOutcome, StopHandle, TaskInvoker};

/// Runs executions against an invoker, a clock and a journal.
#[derive(Clone)]
pub struct DurableRunner {
    invoker: Arc<dyn TaskInvoker>,
    clock: Arc<dyn Clock>,
    journal: Arc<dyn Journal>,
}

fn remaining(deadline: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (deadline - now).to_std().unwrap_or(Duration::ZERO)
}

impl DurableRunner {
    pub fn new(
        invoker: Arc<dyn TaskInvoker>,
        clock: Arc<dyn Clock>,
        journal: Arc<dyn Journal>,
    ) -> Self {
        Self {
            invoker,
            clock,
            journal,
        }
    }

    /// Starts an execution and runs it to the end. The execution is durable once its
    /// `Started` record is appended (before any task runs); an `Err` means the journal
    /// failed and the execution stopped where it was (recover it later).
    pub async fn run(
        &self,
        definition: &Definition,
        input: Value,
        options: ExecutionOptions,
    ) -> Result<ExecutionOutcome, JournalError> {
        let ctx = options.context();
        let name = options.name.clone();
        let now = self.clock.now();
        let (exec, actions) = Execution::start(definition, input.clone(), ctx.clone(), now);
        let mut records = vec![JournalRecord::Started {
            execution: name.clone(),
            definition: (*definition.source).clone(),
            input,
            context: ctx,
            at: now,
        }];
        if let Some(Action::Finish(c)) = actions.last() {
            records.push(JournalRecord::finished(&name, c));
        }
        self.journal.append(records).await?;
        let mut outstanding = Outstanding::default();
        let mut history = Vec::new();
        let finished = outstanding.on_actions(actions, now, &mut history);
        if let Some(done) = finished {
            return Ok(outcome(done, history));
        }
        let work = initial_work(&outstanding, now);
        self.drive(name, exec, outstanding, history, work, options.stop)
            .await
    }

    /// Resumes every unfinished execution in the journal and runs them to the end,
    /// concurrently. Returns their outcomes by execution name.
    pub async fn recover(&self) -> Result<Vec<(String, ExecutionOutcome)>, JournalError> {
        let logs = self.journal.unfinished().await?;
        let mut set = JoinSet::new();
        for log in logs {
            let replayed = replay(&log)?;
            let runner = self.clone();
            set.spawn(async move {
                let name = replayed.name.clone();
                let r = runner.resume_replayed(replayed, None).await;
                (name, r)
            });
        }
        let mut out = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (name, r) =
                joined.map_err(|e| JournalError::Storage(format!("recovery task: {e}")))?;
            out.push((name, r?));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Resumes one unfinished execution from its journal records (one entry of
    /// [`Journal::unfinished`]) and runs it to the end; `stop` aborts it (StopExecution).
    /// The caller makes sure nothing else runs the same execution meanwhile.
    pub async fn resume(
        &self,
        log: &[JournalRecord],
        stop: Option<StopHandle>,
    ) -> Result<ExecutionOutcome, JournalError> {
        self.resume_replayed(replay(log)?, stop).await
    }

    async fn resume_replayed(
        &self,
        replayed: crate::journal::Replayed,
        stop: Option<StopHandle>,
    ) -> Result<ExecutionOutcome, JournalError> {
        let crate::journal::Replayed {
            name,
            execution,
            history,
            finished,
            tasks,
            timers,
        } = replayed;
        if let Some(done) = finished {
            // Finished in replay but the record is missing: store it.
            self.journal
                .append(vec![JournalRecord::finished(&name, &done)])
                .await?;
            return Ok(outcome(done, history));
        }
        let mut outstanding = Outstanding::default();
        for t in tasks {
            outstanding.tasks.insert(t.id, t);
        }
        for (id, d) in timers {
            outstanding.timers.insert(id, d);
        }
        let work = initial_work(&outstanding, self.clock.now());
        self.drive(name, execution, outstanding, history, work, stop)
            .await
    }

    async fn drive(
        &self,
        name: String,
        mut exec: Execution,
        mut outstanding: Outstanding,
        mut history: Vec<HistoryEvent>,
        work: Vec<Work>,
        stop: Option<StopHandle>,
    ) -> Result<ExecutionOutcome, JournalError> {
        let mut stop_rx: Option<watch::Receiver<_>> = stop.as_ref().map(StopHandle::subscribe);
        let mut pending = crate::runner::InFlight::default();
        let mut queue: VecDeque<Work> = work.into();
        loop {
            while let Some(w) = queue.pop_front() {
                self.perform(&mut pending, w);
            }
            let event = tokio::select! {
                biased;
                req = StopHandle::stopped(&mut stop_rx) => Event::Abort { error: req.0, cause: req.1 },
                event = pending.next() => event,
            };
            let now = self.clock.now();
            outstanding.on_event(&event);
            let actions = exec.on_event(event.clone(), now);
            let mut records = vec![JournalRecord::Event {
                execution: name.clone(),
                at: now,
                event,
            }];
            let mut new_tasks: Vec<OpId> = Vec::new();
            let mut new_timers: Vec<OpId> = Vec::new();
            for a in &actions {
                match a {
                    Action::InvokeTask { id, .. } => new_tasks.push(*id),
                    Action::StartTimer { id, .. } => new_timers.push(*id),
                    _ => {}
                }
            }
            let done = outstanding.on_actions(actions, now, &mut history);
            if let Some(c) = &done {
                records.push(JournalRecord::finished(&name, c));
            }
            // Journal first: a crash from here on replays this event.
            self.journal.append(records).await?;
            if let Some(done) = done {
                // A task still running (StopExecution, a failed branch) is discarded when
                // `pending` is dropped.
                return Ok(outcome(done, history));
            }
            for id in new_tasks {
                if let Some(t) = outstanding.tasks.get(&id) {
                    queue.push_back(Work::Task(t.clone()));
                }
            }
            for id in new_timers {
                if let Some(d) = outstanding.timers.get(&id) {
                    queue.push_back(Work::Timer(id, remaining(*d, now)));
                }
            }
        }
    }

    fn perform(&self, pending: &mut crate::runner::InFlight, w: Work) {
        match w {
            Work::Timer(id, d) => pending.push_timer(id, self.clock.sleep(d)),
            Work::Task(t) => {
                let invoker = self.invoker.clone();
                let timeout = t.deadline.map(|d| remaining(d, self.clock.now()));
                let sleep = timeout.map(|d| self.clock.sleep(d));
                pending.push(async move {
                    let call = invoker.invoke(&t.resource, t.input);
                    let result = match sleep {
                        None => call.await,
                        Some(sleep) => tokio::select! {
                            r = call => r,
                            () = sleep => return Event::TaskTimedOut { id: t.id },
                        },
                    };
                    match result {
                        Ok(output) => Event::TaskSucceeded { id: t.id, output },
                        Err(f) => Event::TaskFailed {
                            id: t.id,
                            error: f.error,
                            cause: f.cause,
                        },
                    }
                });
            }
        }
    }
}

enum Work {
    Task(PendingTask),
    Timer(OpId, Duration),
}

fn initial_work(o: &Outstanding, now: DateTime<Utc>) -> Vec<Work> {
    let mut w: Vec<Work> = o.tasks.values().cloned().map(Work::Task).collect();
    w.extend(
        o.timers
            .iter()
            .map(|(id, d)| Work::Timer(*id, remaining(*d, now))),
    );
    w
}

fn outcome(done: Completion, history: Vec<HistoryEvent>) -> ExecutionOutcome {
    ExecutionOutcome {
        status: done.status,
        output: done.output,
        error: done.error,
        cause: done.cause,
        history,
    }
}

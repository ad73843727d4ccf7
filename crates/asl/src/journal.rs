//! The durable journal: what [`crate::durable::DurableRunner`] writes before it acts, so
//! that an execution interrupted at any point resumes by replaying it.
//!
//! The core is deterministic given the definition, the input, the execution context (with
//! its random seed), the start time and the sequence of `(time, event)` pairs it consumed.
//! So the journal stores exactly that: a `Started` record, then one `Event` record per
//! event fed to the core (a task result, a timer, a stop request), then `Finished`. The
//! history, the outstanding tasks and timers are all recomputed by replay.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::execution::{
    Action, Completion, Event, Execution, ExecutionContext, ExecutionStatus, OpId,
};
use crate::history::HistoryEvent;
use crate::model::Definition;

/// One journal record. Every record names its execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum JournalRecord {
    /// The execution was accepted: everything needed to start it again.
    Started {
        execution: String,
        definition: Value,
        input: Value,
        context: ExecutionContext,
        at: DateTime<Utc>,
    },
    /// An event the core consumed at `at`.
    Event {
        execution: String,
        at: DateTime<Utc>,
        event: Event,
    },
    /// The execution ended.
    Finished {
        execution: String,
        status: ExecutionStatus,
        output: Option<Value>,
        error: Option<String>,
        cause: Option<String>,
    },
}

impl JournalRecord {
    pub fn execution(&self) -> &str {
        match self {
            JournalRecord::Started { execution, .. }
            | JournalRecord::Event { execution, .. }
            | JournalRecord::Finished { execution, .. } => execution,
        }
    }

    pub(crate) fn finished(execution: &str, c: &Completion) -> JournalRecord {
        JournalRecord::Finished {
            execution: execution.to_owned(),
            status: c.status,
            output: c.output.clone(),
            error: c.error.clone(),
            cause: c.cause.clone(),
        }
    }
}

/// Why the journal could not store or load records.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("an execution named {0:?} is already in the journal")]
    AlreadyExists(String),
    #[error("journal storage: {0}")]
    Storage(String),
    #[error("journal record is corrupt: {0}")]
    Corrupt(String),
    /// A simulated crash (tests): the runner stops at once, as a killed process would.
    #[error("simulated crash")]
    Crashed,
}

/// Durable storage of journal records. `append` returns once the records are stored
/// (implementations may group concurrent appends into one commit).
#[async_trait]
pub trait Journal: Send + Sync {
    /// Stores `records` (all of one execution) atomically and in order. A `Started`
    /// record for a name already present fails with [`JournalError::AlreadyExists`].
    async fn append(&self, records: Vec<JournalRecord>) -> Result<(), JournalError>;
    /// The records of every execution without a `Finished` record, each in append order.
    async fn unfinished(&self) -> Result<Vec<Vec<JournalRecord>>, JournalError>;
}

// ---------------------------------------------------------------------------------------
// Replay

/// A task invocation that was asked for and has no journaled result.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingTask {
    pub id: OpId,
    pub resource: String,
    pub input: Value,
    /// When the task's timeout (if any) expires.
    pub deadline: Option<DateTime<Utc>>,
}

/// An execution rebuilt from its journal.
pub struct Replayed {
    pub name: String,
    pub execution: Execution,
    pub history: Vec<HistoryEvent>,
    /// Set when replay reached the end of the execution.
    pub finished: Option<Completion>,
    /// Tasks in flight at the crash: they run again.
    pub tasks: Vec<PendingTask>,
    /// Timers not yet fired, with their deadlines.
    pub timers: Vec<(OpId, DateTime<Utc>)>,
}

fn deadline(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Tracks the actions an execution asked for that have not been answered yet.
#[derive(Default)]
pub(crate) struct Outstanding {
    pub tasks: BTreeMap<OpId, PendingTask>,
    pub timers: BTreeMap<OpId, DateTime<Utc>>,
}

impl Outstanding {
    pub(crate) fn on_actions(
        &mut self,
        actions: Vec<Action>,
        at: DateTime<Utc>,
        history: &mut Vec<HistoryEvent>,
    ) -> Option<Completion> {
        let mut done = None;
        for a in actions {
            match a {
                Action::InvokeTask {
                    id,
                    resource,
                    input,
                    timeout,
                } => {
                    self.tasks.insert(
                        id,
                        PendingTask {
                            id,
                            resource,
                            input,
                            deadline: timeout.map(|d| deadline(at, d)),
                        },
                    );
                }
                Action::StartTimer { id, duration } => {
                    self.timers.insert(id, deadline(at, duration));
                }
                Action::RecordHistory(e) => history.push(e),
                Action::Finish(c) => done = Some(c),
            }
        }
        done
    }

    pub(crate) fn on_event(&mut self, event: &Event) {
        match event {
            Event::TaskSucceeded { id, .. }
            | Event::TaskFailed { id, .. }
            | Event::TaskTimedOut { id } => {
                self.tasks.remove(id);
            }
            Event::TimerFired { id } => {
                self.timers.remove(id);
            }
            Event::Abort { .. } => {}
        }
    }
}

/// Rebuilds an execution from its records (as [`Journal::unfinished`] returns them).
pub fn replay(records: &[JournalRecord]) -> Result<Replayed, JournalError> {
    let Some(JournalRecord::Started {
        execution: name,
        definition,
        input,
        context,
        at,
    }) = records.first()
    else {
        return Err(JournalError::Corrupt(
            "an execution's journal does not begin with its Started record".into(),
        ));
    };
    let definition = Definition::from_value(definition)
        .map_err(|e| JournalError::Corrupt(format!("{name}: stored definition: {e}")))?;
    let (mut exec, actions) = Execution::start(&definition, input.clone(), context.clone(), *at);
    let mut history = Vec::new();
    let mut outstanding = Outstanding::default();
    let mut finished = outstanding.on_actions(actions, *at, &mut history);
    for r in &records[1..] {
        match r {
            JournalRecord::Event { at, event, .. } => {
                outstanding.on_event(event);
                let actions = exec.on_event(event.clone(), *at);
                if let Some(c) = outstanding.on_actions(actions, *at, &mut history) {
                    finished = Some(c);
                }
            }
            JournalRecord::Finished { .. } => {}
            JournalRecord::Started { .. } => {
                return Err(JournalError::Corrupt(format!(
                    "{name}: a second Started record"
                )));
            }
        }
    }
    Ok(Replayed {
        name: name.clone(),
        execution: exec,
        history,
        finished,
        tasks: outstanding.tasks.into_values().collect(),
        timers: outstanding.timers.into_iter().collect(),
    })
}

// ---------------------------------------------------------------------------------------
// In-memory journal (tests, benchmarks)

/// How a [`MemoryJournal`] simulates a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// The n-th append (0-based) is lost and fails: the crash came before the write.
    BeforeWrite(usize),
    /// The n-th append is stored, then fails: the crash came right after the write,
    /// before the runner acted on it.
    AfterWrite(usize),
}

#[derive(Default)]
struct MemoryState {
    logs: HashMap<String, Vec<JournalRecord>>,
    finished: HashMap<String, bool>,
    appends: usize,
    crashed: bool,
}

/// A journal in memory; with a [`CrashMode`] it fails like a process killed at that
/// append, and keeps failing until [`MemoryJournal::restart`].
#[derive(Default, Clone)]
pub struct MemoryJournal {
    state: Arc<Mutex<MemoryState>>,
    crash: Arc<Mutex<Option<CrashMode>>>,
}

impl MemoryJournal {
    pub fn new() -> Self {
        Self::default()
    }

    /// A journal that crashes at the given append.
    pub fn crashing(mode: CrashMode) -> Self {
        let j = Self::default();
        if let Ok(mut c) = j.crash.lock() {
            *c = Some(mode);
        }
        j
    }

    /// Whether the simulated crash happened.
    pub fn crashed(&self) -> bool {
        self.state.lock().map(|s| s.crashed).unwrap_or(false)
    }

    /// "Restarts the process": the stored records stay, the crash is cleared.
    pub fn restart(&self) {
        if let Ok(mut c) = self.crash.lock() {
            *c = None;
        }
        if let Ok(mut s) = self.state.lock() {
            s.crashed = false;
        }
    }

    /// All records of one execution.
    pub fn records(&self, execution: &str) -> Vec<JournalRecord> {
        self.state
            .lock()
            .ok()
            .and_then(|s| s.logs.get(execution).cloned())
            .unwrap_or_default()
    }

    /// How many appends were stored.
    pub fn appends(&self) -> usize {
        self.state.lock().map(|s| s.appends).unwrap_or(0)
    }
}

fn poisoned<T>(_: T) -> JournalError {
    JournalError::Storage("lock poisoned".into())
}

#[async_trait]
impl Journal for MemoryJournal {
    async fn append(&self, records: Vec<JournalRecord>) -> Result<(), JournalError> {
        let crash = *self.crash.lock().map_err(poisoned)?;
        let mut s = self.state.lock().map_err(poisoned)?;
        if s.crashed {
            return Err(JournalError::Crashed);
        }
        let n = s.appends;
        if crash == Some(CrashMode::BeforeWrite(n)) {
            s.crashed = true;
            return Err(JournalError::Crashed);
        }
        for r in records {
            let name = r.execution().to_owned();
            if matches!(r, JournalRecord::Started { .. }) && s.logs.contains_key(&name) {
                return Err(JournalError::AlreadyExists(name));
            }
            if matches!(r, JournalRecord::Finished { .. }) {
                s.finished.insert(name.clone(), true);
            }
            s.logs.entry(name).or_default().push(r);
        }
        s.appends += 1;
        if crash == Some(CrashMode::AfterWrite(n)) {
            s.crashed = true;
            return Err(JournalError::Crashed);
        }
        Ok(())
    }

    async fn unfinished(&self) -> Result<Vec<Vec<JournalRecord>>, JournalError> {
        let s = self.state.lock().map_err(poisoned)?;
        let mut names: Vec<&String> = s
            .logs
            .keys()
            .filter(|n| !s.finished.get(*n).copied().unwrap_or(false))
            .collect();
        names.sort();
        Ok(names
            .into_iter()
            .filter_map(|n| s.logs.get(n).cloned())
            .collect())
    }
}

// ---------------------------------------------------------------------------------------
// File journal

/// A journal in one append-only file of JSON lines. Each append is written with a single
/// `write` and flushed, so a killed process loses at most the append in progress (a torn
/// last line is ignored on load); with `sync` each append is also fsynced (power loss).
pub struct FileJournal {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    sync: bool,
}

impl FileJournal {
    pub fn open(path: &Path, sync: bool) -> Result<Self, JournalError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| JournalError::Storage(format!("{}: {e}", path.display())))?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            sync,
        })
    }

    fn load(&self) -> Result<Vec<JournalRecord>, JournalError> {
        let f = std::fs::File::open(&self.path)
            .map_err(|e| JournalError::Storage(format!("{}: {e}", self.path.display())))?;
        let mut out = Vec::new();
        for line in std::io::BufReader::new(f).lines() {
            let line = line.map_err(|e| JournalError::Storage(e.to_string()))?;
            // A batch is one line: a torn (killed mid-write) line is not stored.
            match serde_json::from_str::<Vec<JournalRecord>>(&line) {
                Ok(batch) => out.extend(batch),
                Err(_) => break,
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Journal for FileJournal {
    async fn append(&self, records: Vec<JournalRecord>) -> Result<(), JournalError> {
        let mut line =
            serde_json::to_string(&records).map_err(|e| JournalError::Storage(e.to_string()))?;
        line.push('\n');
        let mut f = self.file.lock().map_err(poisoned)?;
        f.write_all(line.as_bytes())
            .and_then(|()| f.flush())
            .map_err(|e| JournalError::Storage(e.to_string()))?;
        if self.sync {
            f.sync_data()
                .map_err(|e| JournalError::Storage(e.to_string()))?;
        }
        Ok(())
    }

    async fn unfinished(&self) -> Result<Vec<Vec<JournalRecord>>, JournalError> {
        let mut logs: BTreeMap<String, Vec<JournalRecord>> = BTreeMap::new();
        let mut finished = std::collections::HashSet::new();
        for r in self.load()? {
            let name = r.execution().to_owned();
            if matches!(r, JournalRecord::Finished { .. }) {
                finished.insert(name.clone());
            }
            logs.entry(name).or_default().push(r);
        }
        Ok(logs
            .into_iter()
            .filter(|(n, _)| !finished.contains(n))
            .map(|(_, v)| v)
            .collect())
    }
}

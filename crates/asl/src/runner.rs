//! The imperative shell: performs the core's actions (task invocations, timers, history)
//! against a [`TaskInvoker`] and a [`Clock`], and feeds the results back.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use std::future::Future;
use std::panic::AssertUnwindSafe;

use async_trait::async_trait;
use docpipe_core::{BoxFuture, Clock};
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;

use crate::execution::{Action, Event, Execution, ExecutionContext, ExecutionStatus, OpId};
use crate::history::HistoryEvent;
use crate::model::Definition;

/// An execution's outstanding task invocations and timers, polled inside the execution's
/// own task: no task is spawned per invocation, so an event costs no thread hand-off.
/// Dropping the set cancels what is still outstanding.
#[derive(Default)]
pub(crate) struct InFlight {
    set: FuturesUnordered<BoxFuture<'static, Event>>,
}

impl InFlight {
    /// Adds `work`; a panic inside it ends the execution as `States.Runtime` instead of
    /// unwinding through the runner.
    pub(crate) fn push(&mut self, work: impl Future<Output = Event> + Send + 'static) {
        self.set
            .push(Box::pin(AssertUnwindSafe(work).catch_unwind().map(
                |r| match r {
                    Ok(event) => event,
                    Err(_) => {
                        tracing::error!("a task invocation panicked");
                        Event::Abort {
                            error: Some("States.Runtime".into()),
                            cause: Some("internal: a task invocation panicked".into()),
                        }
                    }
                },
            )));
    }

    /// Adds a timer that reports `TimerFired { id }` when `sleep` completes.
    pub(crate) fn push_timer(&mut self, id: OpId, sleep: BoxFuture<'static, ()>) {
        self.set.push(Box::pin(async move {
            sleep.await;
            Event::TimerFired { id }
        }));
    }

    /// The next event; when nothing is outstanding, an abort (the execution would wait
    /// forever).
    pub(crate) async fn next(&mut self) -> Event {
        match self.set.next().await {
            Some(event) => event,
            None => Event::Abort {
                error: Some("States.Runtime".into()),
                cause: Some("internal: the execution is waiting for nothing".into()),
            },
        }
    }
}

/// A task's failure: `error` is the name Retry and Catch match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    pub error: String,
    pub cause: String,
}

impl TaskFailure {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

/// Runs a Task state's resource. `resource` is the definition's `Resource` verbatim.
#[async_trait]
pub trait TaskInvoker: Send + Sync {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskFailure>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StopRequest {
    error: Option<String>,
    cause: Option<String>,
}

/// Stops a running execution (StopExecution); cheap to clone.
#[derive(Debug, Clone)]
pub struct StopHandle {
    tx: Arc<watch::Sender<Option<StopRequest>>>,
}

impl Default for StopHandle {
    fn default() -> Self {
        Self::new()
    }
}

impl StopHandle {
    pub fn new() -> Self {
        let (tx, _rx) = watch::channel(None);
        Self { tx: Arc::new(tx) }
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Option<StopRequest>> {
        self.tx.subscribe()
    }

    /// Waits for a stop request: `(error, cause)`.
    pub(crate) async fn stopped(
        rx: &mut Option<watch::Receiver<Option<StopRequest>>>,
    ) -> (Option<String>, Option<String>) {
        let r = stopped(rx).await;
        (r.error, r.cause)
    }

    /// Asks the execution to abort; it ends with status ABORTED.
    pub fn stop(&self, error: Option<String>, cause: Option<String>) {
        self.tx.send_replace(Some(StopRequest { error, cause }));
    }
}

/// How to run one execution.
#[derive(Debug, Clone)]
pub struct ExecutionOptions {
    /// Execution name (the job id in docpipe).
    pub name: String,
    pub state_machine_name: String,
    pub region: String,
    pub account_id: String,
    /// Overrides the role ARN shown in the context object.
    pub role_arn: Option<String>,
    /// Seed for randomness (UUIDs, jitter); random when `None`.
    pub seed: Option<u64>,
    pub stop: Option<StopHandle>,
    /// An EXPRESS execution (StartSyncExecution): its ARN, and so `$$.Execution.Id`, is
    /// `arn:aws:states:{region}:{account}:express:{machine}:{name}:{id}`.
    pub express: bool,
}

impl Default for ExecutionOptions {
    fn default() -> Self {
        Self {
            name: "execution".into(),
            state_machine_name: "StateMachine".into(),
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            role_arn: None,
            seed: None,
            stop: None,
            express: false,
        }
    }
}

impl ExecutionOptions {
    pub(crate) fn context(&self) -> ExecutionContext {
        let mut ctx = ExecutionContext::new(
            &self.region,
            &self.account_id,
            &self.state_machine_name,
            &self.name,
        );
        if let Some(r) = &self.role_arn {
            ctx.role_arn = r.clone();
        }
        ctx.seed = self.seed.unwrap_or_else(|| {
            let mut b = [0u8; 8];
            match getrandom::fill(&mut b) {
                Ok(()) => u64::from_le_bytes(b),
                Err(_) => 0x2545_F491_4F6C_DD1D,
            }
        });
        if self.express {
            ctx.execution_arn = format!(
                "arn:aws:states:{}:{}:express:{}:{}:{}",
                self.region,
                self.account_id,
                self.state_machine_name,
                self.name,
                uuid_from_seed(ctx.seed)
            );
        }
        ctx
    }
}

/// A version-4-shaped UUID derived from `seed` (splitmix64), so replay rebuilds it.
fn uuid_from_seed(seed: u64) -> String {
    let mut x = seed;
    let mut next = || {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let (a, b) = (next(), next());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        ((b >> 48) & 0x3fff) | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// The result of [`Runner::run`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionOutcome {
    pub status: ExecutionStatus,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub history: Vec<HistoryEvent>,
}

/// Runs executions against an invoker and a clock.
#[derive(Clone)]
pub struct Runner {
    invoker: Arc<dyn TaskInvoker>,
    clock: Arc<dyn Clock>,
}

async fn stopped(rx: &mut Option<watch::Receiver<Option<StopRequest>>>) -> StopRequest {
    if let Some(rx) = rx
        && let Ok(v) = rx.wait_for(Option::is_some).await
        && let Some(req) = v.clone()
    {
        return req;
    }
    std::future::pending().await
}

impl Runner {
    pub fn new(invoker: Arc<dyn TaskInvoker>, clock: Arc<dyn Clock>) -> Self {
        Self { invoker, clock }
    }

    /// Runs `definition` on `input` to completion (or until stopped).
    pub async fn run(
        &self,
        definition: &Definition,
        input: Value,
        options: ExecutionOptions,
    ) -> ExecutionOutcome {
        let mut stop_rx = options.stop.as_ref().map(|s| s.tx.subscribe());
        let (mut exec, actions) =
            Execution::start(definition, input, options.context(), self.clock.now());
        let mut queue: VecDeque<Action> = actions.into();
        let mut history = Vec::with_capacity(32);
        let mut pending = InFlight::default();
        loop {
            while let Some(action) = queue.pop_front() {
                match action {
                    Action::RecordHistory(e) => history.push(e),
                    Action::Finish(done) => {
                        // Dropping `pending` cancels what is still running.
                        return ExecutionOutcome {
                            status: done.status,
                            output: done.output,
                            error: done.error,
                            cause: done.cause,
                            history,
                        };
                    }
                    Action::InvokeTask {
                        id,
                        resource,
                        input,
                        timeout,
                    } => {
                        pending.push(invoke(
                            self.invoker.clone(),
                            self.clock.clone(),
                            id,
                            resource,
                            input,
                            timeout,
                        ));
                    }
                    Action::StartTimer { id, duration } => {
                        pending.push_timer(id, self.clock.sleep(duration));
                    }
                }
            }
            let event = tokio::select! {
                biased;
                req = stopped(&mut stop_rx) => Event::Abort { error: req.error, cause: req.cause },
                event = pending.next() => event,
            };
            queue.extend(exec.on_event(event, self.clock.now()));
        }
    }
}

async fn invoke(
    invoker: Arc<dyn TaskInvoker>,
    clock: Arc<dyn Clock>,
    id: OpId,
    resource: String,
    input: Value,
    timeout: Option<Duration>,
) -> Event {
    let call = invoker.invoke(&resource, input);
    let result = match timeout {
        None => call.await,
        Some(d) => {
            let sleep = clock.sleep(d);
            tokio::select! {
                r = call => r,
                () = sleep => return Event::TaskTimedOut { id },
            }
        }
    };
    match result {
        Ok(output) => Event::TaskSucceeded { id, output },
        Err(f) => Event::TaskFailed {
            id,
            error: f.error,
            cause: f.cause,
        },
    }
}

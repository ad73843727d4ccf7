//! Amazon States Language for docpipe: a validating model of definitions, a pure
//! interpreter core that turns events into actions, and a runner that performs them.
//!
//! ```no_run
//! # async fn demo(invoker: std::sync::Arc<dyn docpipe_asl::TaskInvoker>) -> docpipe_asl::Result<()> {
//! use std::sync::Arc;
//! use docpipe_asl::{Definition, ExecutionOptions, Runner, clock::SystemClock};
//! let definition = Definition::parse(r#"{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}}"#)?;
//! let runner = Runner::new(invoker, Arc::new(SystemClock));
//! let outcome = runner.run(&definition, serde_json::json!({}), ExecutionOptions::default()).await;
//! println!("{}", outcome.status.as_str());
//! # Ok(()) }
//! ```

pub mod choice;
pub mod clock;
pub mod conformance;
pub mod durable;
mod error;
pub mod execution;
mod hash;
pub mod history;
pub mod intrinsics;
pub mod journal;
pub mod jsonata;
pub mod model;
pub mod path;
pub mod runner;
pub mod template;

pub use durable::DurableRunner;
pub use error::{Error, Result, StatesError, names};
pub use execution::{Action, Completion, Event, Execution, ExecutionContext, ExecutionStatus};
pub use history::{EventDetails, EventType, HistoryEvent, Payload};
pub use journal::{Journal, JournalError, JournalRecord};
pub use model::{Definition, QueryLanguage};
pub use runner::{
    ExecutionOptions, ExecutionOutcome, Runner, StopHandle, TaskFailure, TaskInvoker,
};

//! docpipe-local: the embedded adapters. SQLite job store, filesystem object store, the PDF
//! text layer (parsed in a bounded worker subprocess), the rule-based extractors, and the
//! extractor over an OpenAI-compatible chat-completions server.

pub mod api_store;
pub mod chat_extractor;
mod child;
pub mod einvoice;
pub mod embedded;
pub mod fetch;
pub mod fs_objects;
pub mod invoice;
pub mod journal;
pub mod ocr;
pub mod orchestrator;
pub mod pdf;
pub mod rooms;
pub mod sqlite;
pub mod worker;

pub use fs_objects::FsObjectStore;
pub use sqlite::SqliteJobStore;

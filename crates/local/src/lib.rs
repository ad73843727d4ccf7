//! docpipe-local: the embedded host. SQLite job store, object store (small objects in the database, large ones as files), the
//! execution journal, the orchestrator that runs `pipeline.asl.json` in-process, the
//! embedded pipeline that wires the document engines (docpipe-pdf, -ocr, -invoice,
//! -rooms) behind the core's ports, and the extractor over an OpenAI-compatible
//! chat-completions server.

pub mod api_store;
pub mod chat_extractor;
pub mod delivery;
pub mod embedded;
pub mod faults;
pub mod fs_objects;
pub mod journal;
pub mod objects;
pub mod orchestrator;
pub mod outbox;
pub mod page_images;
pub mod private_files;
pub mod retention;
pub mod sqlite;
pub mod watch;

pub use fs_objects::FsObjectStore;
pub use objects::LocalObjectStore;
pub use sqlite::SqliteJobStore;

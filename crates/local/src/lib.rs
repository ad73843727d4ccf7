//! docpipe-local: the embedded adapters. SQLite job store, filesystem object store, the PDF
//! text layer (parsed in a bounded worker subprocess) and the rule-based extractors.

pub mod api_store;
mod child;
pub mod einvoice;
pub mod embedded;
pub mod faults;
pub mod fetch;
pub mod fs_objects;
pub mod invoice;
pub mod journal;
pub mod ocr;
pub mod orchestrator;
pub mod pdf;
pub mod private_files;
pub mod rooms;
pub mod sqlite;
pub mod worker;

pub use fs_objects::FsObjectStore;
pub use sqlite::SqliteJobStore;

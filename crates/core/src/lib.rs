//! docpipe-core: the domain (jobs, statuses, documents, results), the ports the pipeline
//! talks through, and the five stage functions. It knows no cloud SDK and no async runtime:
//! every adapter lives in another crate.

pub mod clock;
pub mod detect;
pub mod document;
pub mod error;
pub mod events;
pub mod execution;
pub mod ids;
pub mod image_info;
pub mod intake;
pub mod invoice_record;
pub mod job;
pub mod keys;
pub mod lifecycle;
pub mod ports;
pub mod pricing;
pub mod result;
pub mod retention;
pub mod review;
pub mod stages;
pub mod webhooks;

/// The state machine (`statemachine/pipeline.asl.json`), compiled into every binary: the
/// embedded host runs it, the API draws it.
pub const PIPELINE_DEFINITION: &str = include_str!("../../../statemachine/pipeline.asl.json");

pub use clock::{BoxFuture, Clock};
pub use document::{BBox, Document, Line, Page, TextSource, Word};
pub use error::{ErrorCode, ErrorName, StageError};
pub use ids::{JobId, ObjectKey, UploadId};
pub use job::{
    Actor, Cost, DocumentKind, Job, JobError, JobStatus, MediaType, OperatorAction, OperatorChange,
    StatusChange,
};
pub use keys::{ApiKey, IdempotencyRecord, IdempotencyStore, KeyStore};
pub use ports::{
    Admission, CachedResult, ChangeToken, Extractor, Fetched, Fetcher, HealthProbe, JobFilter,
    JobPage, JobPatch, JobStore, ObjectStore, Ocr, Orchestrator, PageImage, PageImages, Ports,
    ResultCache, StoredImagePages,
};
pub use result::{
    Check, Field, ImageSize, InvoiceResult, LineItem, ResultSource, Room, RoomsResult, TaxSubtotal,
};

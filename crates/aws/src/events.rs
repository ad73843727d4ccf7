//! Status events on AWS: the jobs table's stream (new and old images) is the outbox. Every
//! stream record whose `status` changed becomes the core's `job.status.v1` CloudEvent
//! ([`docpipe_core::events::JobStatusEvent`], the same JSON as on the embedded host) and is
//! put on the deployment's EventBridge bus with that JSON as the detail. A record is read
//! again until its batch is put, so every change is published at least once, in the
//! table's order per job; the event id (`{job_id}.{n}`) lets receivers drop repeats.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use chrono::{DateTime, Utc};
use docpipe_core::events::{JOB_STATUS_V1, JobStatusEvent};
use docpipe_core::ports::Result;
use docpipe_core::{Job, JobStatus, StageError};
use serde_json::Value;

use crate::error::sdk_error;

/// The events' `source` on AWS (CloudEvents) and their EventBridge `Source`.
pub const SOURCE: &str = "urn:docpipe:aws";
/// The EventBridge `Source` of every docpipe event (rules match on it).
pub const EVENTBRIDGE_SOURCE: &str = "docpipe";
/// PutEvents takes at most this many entries per call.
const MAX_ENTRIES: usize = 10;

/// Puts events on one bus.
#[derive(Clone, Debug)]
pub struct EventBridgePublisher {
    client: Client,
    bus: String,
}

impl EventBridgePublisher {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }

    /// Puts every event, in order, ten per call; an entry EventBridge refused fails the
    /// whole call (the stream hands the batch again: receivers dedupe by id).
    pub async fn publish(&self, events: &[JobStatusEvent]) -> Result<()> {
        for chunk in events.chunks(MAX_ENTRIES) {
            let mut request = self.client.put_events();
            for event in chunk {
                request = request.entries(
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(EVENTBRIDGE_SOURCE)
                        .detail_type(JOB_STATUS_V1)
                        .time(aws_smithy_types::DateTime::from_secs(
                            event.time.timestamp(),
                        ))
                        .resources(event.subject.clone())
                        .detail(event.to_json()?)
                        .build(),
                );
            }
            let out = request
                .send()
                .await
                .map_err(|e| sdk_error("EventBridge PutEvents", e))?;
            if out.failed_entry_count() > 0 {
                let why: Vec<String> = out
                    .entries()
                    .iter()
                    .filter_map(|e| e.error_message().map(str::to_owned))
                    .collect();
                return Err(StageError::unavailable(format!(
                    "EventBridge refused {} of {} events: {}",
                    out.failed_entry_count(),
                    chunk.len(),
                    why.join("; ")
                )));
            }
        }
        Ok(())
    }
}

/// The event a DynamoDB stream record of the jobs table stands for (the record as Lambda
/// hands it: `eventName`, `dynamodb.NewImage`, `dynamodb.OldImage` in DynamoDB JSON).
/// `None` for a record that is no status change: a removal (TTL), or a write that left the
/// status as it was.
pub fn event_of_stream_record(record: &Value) -> Result<Option<JobStatusEvent>> {
    let corrupt = |what: &str| StageError::internal(format!("jobs stream record: {what}"));
    let name = record.get("eventName").and_then(Value::as_str);
    if !matches!(name, Some("INSERT" | "MODIFY")) {
        return Ok(None);
    }
    let images = record
        .get("dynamodb")
        .ok_or_else(|| corrupt("no dynamodb"))?;
    let new = images
        .get("NewImage")
        .ok_or_else(|| corrupt("no NewImage"))?;
    let status_of = |image: &Value| -> Option<JobStatus> {
        image
            .pointer("/status/S")
            .and_then(Value::as_str)
            .and_then(JobStatus::parse)
    };
    let status = status_of(new).ok_or_else(|| corrupt("no status"))?;
    let previous = images.get("OldImage").and_then(status_of);
    if previous == Some(status) {
        return Ok(None);
    }
    let data = new
        .pointer("/data/S")
        .and_then(Value::as_str)
        .ok_or_else(|| corrupt("no data"))?;
    let job: Job =
        serde_json::from_str(data).map_err(|e| StageError::internal(format!("stored job: {e}")))?;
    // The change's number and time: the history the same write appended to.
    let history = new
        .pointer("/history/L")
        .and_then(Value::as_array)
        .ok_or_else(|| corrupt("no history"))?;
    let at = history
        .last()
        .and_then(|entry| entry.pointer("/M/at/S"))
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map_or(job.updated_at, |t| t.with_timezone(&Utc));
    Ok(Some(JobStatusEvent::for_change(
        &job,
        previous,
        history.len() as u64,
        SOURCE,
        at,
    )))
}

/// Every event of a stream batch (`{"Records": [...]}`), in order.
pub fn events_of_stream_batch(batch: &Value) -> Result<Vec<JobStatusEvent>> {
    let records = batch
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| StageError::internal("jobs stream batch without Records"))?;
    let mut out = Vec::new();
    for record in records {
        if let Some(event) = event_of_stream_record(record)? {
            out.push(event);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use docpipe_core::{DocumentKind, JobId};
    use serde_json::json;

    fn image(job: &Job, statuses: &[&str]) -> Value {
        json!({
            "job_id": {"S": job.id.as_str()},
            "status": {"S": job.status.as_str()},
            "data": {"S": serde_json::to_string(job).expect("job")},
            "history": {"L": statuses.iter().map(|s| json!({"M": {"status": {"S": s}, "at": {"S": "2026-03-01T12:00:05.000000Z"}}})).collect::<Vec<_>>()},
        })
    }

    #[test]
    fn status_changes_become_events_and_other_writes_do_not() {
        let at: DateTime<Utc> = "2026-03-01T12:00:00Z".parse().expect("time");
        let mut job = Job::new(JobId::generate(at), DocumentKind::Invoice, "a.pdf", at);
        let created =
            json!({"eventName": "INSERT", "dynamodb": {"NewImage": image(&job, &["queued"])}});
        let e = event_of_stream_record(&created)
            .expect("reads")
            .expect("an event");
        assert_eq!(e.id, format!("{}.1", job.id));
        assert_eq!(e.data.previous_status, None);
        let old = image(&job, &["queued"]);
        job.status = JobStatus::Ingesting;
        let moved = json!({"eventName": "MODIFY", "dynamodb": {"OldImage": old, "NewImage": image(&job, &["queued", "ingesting"])}});
        let e = event_of_stream_record(&moved)
            .expect("reads")
            .expect("an event");
        assert_eq!(e.id, format!("{}.2", job.id));
        assert_eq!(e.data.previous_status, Some(JobStatus::Queued));
        assert_eq!(
            e.time,
            "2026-03-01T12:00:05Z".parse::<DateTime<Utc>>().expect("t")
        );
        let same = json!({"eventName": "MODIFY", "dynamodb": {"OldImage": image(&job, &["queued", "ingesting"]), "NewImage": image(&job, &["queued", "ingesting"])}});
        assert_eq!(event_of_stream_record(&same).expect("reads"), None);
        let removed =
            json!({"eventName": "REMOVE", "dynamodb": {"OldImage": image(&job, &["queued"])}});
        assert_eq!(event_of_stream_record(&removed).expect("reads"), None);
        let batch = json!({"Records": [created, moved, same, removed]});
        assert_eq!(events_of_stream_batch(&batch).expect("reads").len(), 2);
    }
}

//! The event publisher on AWS Lambda: fed by the jobs table's stream, it puts every status
//! change on the event bus as the core's `job.status.v1` CloudEvent
//! (`docpipe_aws::events`). A batch that cannot be put fails whole and the stream hands it
//! again: at least once, in order per job.

use docpipe_aws::events::events_of_stream_batch;
use docpipe_functions::Host;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let host = Host::load().await?;
    let host = &host;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let wired = host.wired().await;
        let publisher = wired
            .adapters
            .events
            .as_ref()
            .ok_or("DOCPIPE_EVENT_BUS is not set")?;
        let events = events_of_stream_batch(&event.payload).map_err(|e| e.to_string())?;
        publisher
            .publish(&events)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<Value, lambda_runtime::Error>(json!({ "published": events.len() }))
    }))
    .await
}

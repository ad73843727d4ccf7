//! The webhook deliverer on AWS Lambda: fed by the webhook queue (an EventBridge rule sends
//! it every `job.status.v1` event), it signs and sends each event to the job owner's
//! webhooks with the core's Standard Webhooks code through the SSRF-guarded client
//! (`docpipe_aws::webhooks`). Failed deliveries come back after the core's backoff; after a
//! day they go to the dead-letter queue with the last error.

use docpipe_aws::SystemClock;
use docpipe_aws::sqs::{BatchResponse, Queue, SqsBatch, SqsMessage, queue_url_of_arn};
use docpipe_aws::webhooks::Deliverer;
use docpipe_core::webhooks::RetryPolicy;
use docpipe_fetch::HttpFetcher;
use docpipe_functions::Host;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let host = Host::load().await?;
    let host = &host;
    let sender = &HttpFetcher::default();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsBatch>| async move {
        let wired = host.wired().await;
        let a = &wired.adapters;
        let dead_letters = Queue::new(
            a.sqs.clone(),
            a.settings
                .webhook_dead_letter_url
                .as_deref()
                .ok_or("DOCPIPE_WEBHOOK_DEAD_LETTER_URL is not set")?,
        );
        let endpoint = a.settings.endpoint_url.clone();
        let queue = |m: &SqsMessage| {
            queue_url_of_arn(&m.event_source_arn, endpoint.as_deref())
                .map(|url| Queue::new(a.sqs.clone(), url))
        };
        let deliverer = Deliverer {
            webhooks: &a.webhooks,
            jobs: &a.jobs,
            sender,
            clock: &SystemClock,
            policy: RetryPolicy::default(),
            queue: &queue,
            dead_letters: &dead_letters,
        };
        Ok::<BatchResponse, lambda_runtime::Error>(deliverer.handle(&event.payload).await)
    }))
    .await
}

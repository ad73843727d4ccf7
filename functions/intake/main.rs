//! The intake starter on AWS Lambda: fed by the intake queue (S3 notifications of
//! `incoming/{tenant}/` drops, and intake.v1 messages), it makes one job per document and
//! starts its execution (`docpipe_aws::intake`); refused messages go to the dead-letter
//! queue with their reason, transient failures are received again.

use docpipe_aws::SystemClock;
use docpipe_aws::intake::Starter;
use docpipe_aws::sqs::{BatchResponse, Queue, SqsBatch};
use docpipe_functions::Host;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let host = Host::load().await?;
    let host = &host;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsBatch>| async move {
        let wired = host.wired().await;
        let a = &wired.adapters;
        let dead_letters = Queue::new(
            a.sqs.clone(),
            a.settings
                .intake_dead_letter_url
                .as_deref()
                .ok_or("DOCPIPE_INTAKE_DEAD_LETTER_URL is not set")?,
        );
        let orchestrator = a
            .orchestrator
            .as_ref()
            .ok_or("DOCPIPE_STATE_MACHINE_ARN is not set")?;
        let starter = Starter {
            jobs: &a.jobs,
            objects: &a.objects,
            idempotency: &a.idempotency,
            keys: &a.keys,
            orchestrator,
            clock: &SystemClock,
            documents_bucket: &a.settings.documents_bucket,
            dead_letters: &dead_letters,
            delete_document_when_final: a.settings.retention.delete_document_when_final,
        };
        Ok::<BatchResponse, lambda_runtime::Error>(starter.handle(&event.payload).await)
    }))
    .await
}

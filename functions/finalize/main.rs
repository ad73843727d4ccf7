//! The `finalize` stage on AWS Lambda: settings and SDK clients once, then
//! `docpipe_core::stages::finalize` for every event Step Functions sends.

use docpipe_core::stages::Stage;
use docpipe_functions::Host;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let host = Host::load().await?;
    let host = &host;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        host.run(Stage::Finalize, event).await
    }))
    .await
}

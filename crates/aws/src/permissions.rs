//! The IAM permissions each deployed function needs: the SDK operations the adapters call
//! ([`SDK_OPERATIONS`]: the IAM action that authorises each) and, per function, which of
//! them its code path reaches on which resource ([`needs`]). The AWS checks compare both
//! with `infra/template.yaml`: every adapter call is listed here, every need is granted to
//! the function's role on exactly its resource, and the role grants nothing else.
//!
//! Kept beside the adapters: a new SDK call in an adapter fails that check until it is
//! listed here and granted in the template.

use docpipe_core::stages::Stage;

/// Every SDK operation (fluent-builder method) the adapters call, with the IAM action that
/// authorises it.
pub const SDK_OPERATIONS: &[(&str, &str)] = &[
    // DynamoDB
    ("get_item", "dynamodb:GetItem"),
    ("put_item", "dynamodb:PutItem"),
    ("update_item", "dynamodb:UpdateItem"),
    ("delete_item", "dynamodb:DeleteItem"),
    ("query", "dynamodb:Query"),
    ("scan", "dynamodb:Scan"),
    // S3 (HeadObject is authorised as GetObject; HeadBucket as ListBucket, which also
    // turns a missing key's 403 into the 404 the object store reads as absent)
    ("put_object", "s3:PutObject"),
    ("get_object", "s3:GetObject"),
    ("head_object", "s3:GetObject"),
    ("delete_object", "s3:DeleteObject"),
    ("head_bucket", "s3:ListBucket"),
    // Step Functions
    ("start_execution", "states:StartExecution"),
    ("stop_execution", "states:StopExecution"),
    ("describe_execution", "states:DescribeExecution"),
    ("describe_state_machine", "states:DescribeStateMachine"),
    ("get_execution_history", "states:GetExecutionHistory"),
    // Textract
    ("detect_document_text", "textract:DetectDocumentText"),
    (
        "start_document_text_detection",
        "textract:StartDocumentTextDetection",
    ),
    (
        "get_document_text_detection",
        "textract:GetDocumentTextDetection",
    ),
    // Bedrock (Converse is authorised as InvokeModel)
    ("converse", "bedrock:InvokeModel"),
    // EventBridge, SQS (receiving and deleting is the event source mapping's, through the
    // role SAM gives a function with an SQS event)
    ("put_events", "events:PutEvents"),
    ("send_message", "sqs:SendMessage"),
    ("change_message_visibility", "sqs:ChangeMessageVisibility"),
    // Parameter Store, Secrets Manager
    ("get_parameters_by_path", "ssm:GetParametersByPath"),
    ("get_secret_value", "secretsmanager:GetSecretValue"),
];

/// A deployed function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Function {
    /// The HTTP API (`docpipe-fn-api`).
    Api,
    /// One pipeline stage (`docpipe-functions`).
    Stage(Stage),
    /// Puts the jobs table's status changes on the event bus (`publish-events`).
    PublishEvents,
    /// Delivers events from the webhook queue (`deliver-webhooks`).
    DeliverWebhooks,
    /// Starts jobs from the intake queue (`intake`).
    Intake,
    /// Fails jobs whose execution ended early (`reconcile`).
    Reconcile,
}

impl Function {
    pub const ALL: [Function; 11] = [
        Function::Api,
        Function::Stage(Stage::Ingest),
        Function::Stage(Stage::Ocr),
        Function::Stage(Stage::Extract),
        Function::Stage(Stage::Verify),
        Function::Stage(Stage::Finalize),
        Function::Stage(Stage::RecordFailure),
        Function::PublishEvents,
        Function::DeliverWebhooks,
        Function::Intake,
        Function::Reconcile,
    ];

    /// Its logical id in `infra/template.yaml`.
    pub fn logical_id(self) -> &'static str {
        match self {
            Function::Api => "ApiFunction",
            Function::Stage(Stage::Ingest) => "IngestFunction",
            Function::Stage(Stage::Ocr) => "OcrFunction",
            Function::Stage(Stage::Extract) => "ExtractFunction",
            Function::Stage(Stage::Verify) => "VerifyFunction",
            Function::Stage(Stage::Finalize) => "FinalizeFunction",
            Function::Stage(Stage::RecordFailure) => "RecordFailureFunction",
            Function::PublishEvents => "PublishEventsFunction",
            Function::DeliverWebhooks => "DeliverWebhooksFunction",
            Function::Intake => "IntakeFunction",
            Function::Reconcile => "ReconcileFunction",
        }
    }
}

/// A resource of the stack, as the template names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    JobsTable,
    JobsIndexes,
    ApiKeysTable,
    ApiKeysIndexes,
    IdempotencyTable,
    PreviewCacheTable,
    WebhooksTable,
    /// The bus `job.status.v1` events are put on.
    EventBus,
    /// The queue webhook deliveries wait in (a retry delays its message there).
    WebhookQueue,
    WebhookDeadLetterQueue,
    IntakeDeadLetterQueue,
    /// The bucket itself (ListBucket).
    DocumentsBucket,
    ResultsBucket,
    /// Objects under a key prefix (`"*"`: every object).
    Documents(&'static str),
    Results(&'static str),
    StateMachine,
    /// Every execution of the pipeline state machine.
    Executions,
    /// The deployment's parameters (`/docpipe/{env}`).
    Parameters,
    UploadSigningSecret,
    WebhookSigningSecret,
    /// Foundation models and inference profiles (the model is a setting).
    BedrockModels,
    /// `*`: services without resource-level permissions (Textract).
    Any,
}

impl Target {
    /// How the template writes it, with `!GetAtt X.Arn` as `${X.Arn}` and `!Ref X` as
    /// `${X}` (the checks render the template the same way).
    pub fn rendered(self) -> Vec<String> {
        let one = |s: &str| vec![s.to_owned()];
        match self {
            Target::JobsTable => one("${JobsTable.Arn}"),
            Target::JobsIndexes => one("${JobsTable.Arn}/index/*"),
            Target::ApiKeysTable => one("${ApiKeysTable.Arn}"),
            Target::ApiKeysIndexes => one("${ApiKeysTable.Arn}/index/*"),
            Target::IdempotencyTable => one("${IdempotencyTable.Arn}"),
            Target::PreviewCacheTable => one("${PreviewCacheTable.Arn}"),
            Target::WebhooksTable => one("${WebhooksTable.Arn}"),
            Target::EventBus => one("${EventBus.Arn}"),
            Target::WebhookQueue => one("${WebhookQueue.Arn}"),
            Target::WebhookDeadLetterQueue => one("${WebhookDeadLetterQueue.Arn}"),
            Target::IntakeDeadLetterQueue => one("${IntakeDeadLetterQueue.Arn}"),
            Target::DocumentsBucket => one("${DocumentsBucket.Arn}"),
            Target::ResultsBucket => one("${ResultsBucket.Arn}"),
            Target::Documents(prefix) => vec![format!("${{DocumentsBucket.Arn}}/{prefix}")],
            Target::Results(prefix) => vec![format!("${{ResultsBucket.Arn}}/{prefix}")],
            Target::StateMachine => one("${PipelineStateMachine}"),
            Target::Executions => one(
                "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:docpipe-${Env}-pipeline:*",
            ),
            Target::Parameters => one(
                "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/docpipe/${Env}",
            ),
            Target::UploadSigningSecret => one("${UploadSigningSecret}"),
            Target::WebhookSigningSecret => one("${WebhookSigningSecret}"),
            Target::BedrockModels => vec![
                "arn:${AWS::Partition}:bedrock:*::foundation-model/*".to_owned(),
                "arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:inference-profile/*"
                    .to_owned(),
            ],
            Target::Any => one("*"),
        }
    }
}

/// One permission a function's code path needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub action: &'static str,
    pub target: Target,
    /// The code path that needs it.
    pub why: &'static str,
}

const fn need(action: &'static str, target: Target, why: &'static str) -> Need {
    Need {
        action,
        target,
        why,
    }
}

/// Every function reads its settings from Parameter Store.
const SETTINGS: Need = need(
    "ssm:GetParametersByPath",
    Target::Parameters,
    "AwsAdapters::load, ParameterStore refresh",
);

/// A stage reads and patches its job (`DynamoJobStore::get`, `update`, `transition`).
const STAGE_JOB: [Need; 2] = [
    need("dynamodb:GetItem", Target::JobsTable, "JobStore::get"),
    need(
        "dynamodb:UpdateItem",
        Target::JobsTable,
        "JobStore::update, transition",
    ),
];

/// A job that asks for it loses its document once final (`stages::drop_document`): the
/// upload (any prefix: API, drop, intake), the accepted document and its text.
const DROP_DOCUMENT: [Need; 2] = [
    need(
        "s3:DeleteObject",
        Target::Documents("*"),
        "drop_document: upload, document",
    ),
    need(
        "s3:DeleteObject",
        Target::Results("ocr/*"),
        "drop_document: the text",
    ),
];

/// What `function`'s code path calls, on which resource.
pub fn needs(function: Function) -> Vec<Need> {
    use Target::*;
    let mut out = vec![SETTINGS];
    match function {
        Function::Api => out.extend([
            // Jobs: create, read, list (by owner, by creation), patch (cancel, review).
            need("dynamodb:GetItem", JobsTable, "JobStore::get, health"),
            need("dynamodb:PutItem", JobsTable, "JobStore::create"),
            need(
                "dynamodb:UpdateItem",
                JobsTable,
                "JobStore::update, transition",
            ),
            need("dynamodb:Query", JobsIndexes, "JobStore::list"),
            // Keys: authenticate by hash, count use, list.
            need("dynamodb:GetItem", ApiKeysTable, "health"),
            need(
                "dynamodb:UpdateItem",
                ApiKeysTable,
                "KeyStore::touch, revoke",
            ),
            need("dynamodb:Query", ApiKeysIndexes, "KeyStore::find_by_hash"),
            need("dynamodb:Scan", ApiKeysTable, "KeyStore::list"),
            // Idempotency records and upload claims; the dedupe cache.
            need(
                "dynamodb:GetItem",
                IdempotencyTable,
                "IdempotencyStore::get",
            ),
            need(
                "dynamodb:PutItem",
                IdempotencyTable,
                "IdempotencyStore::put_if_absent",
            ),
            need("dynamodb:GetItem", PreviewCacheTable, "health"),
            // Documents: bodies, uploads (presigned PUT), upload metadata, page images.
            need("s3:GetObject", Documents("*"), "ObjectStore::get, size"),
            need(
                "s3:PutObject",
                Documents("*"),
                "ObjectStore::put, presigned upload",
            ),
            need("s3:DeleteObject", Documents("*"), "ObjectStore::delete"),
            need(
                "s3:ListBucket",
                DocumentsBucket,
                "health; absent uploads answer 404",
            ),
            need("s3:GetObject", Results("*"), "results, OCR pages"),
            need(
                "s3:ListBucket",
                ResultsBucket,
                "health; absent results answer 404",
            ),
            need("states:StartExecution", StateMachine, "Orchestrator::start"),
            need("states:DescribeStateMachine", StateMachine, "health"),
            need(
                "states:StopExecution",
                Executions,
                "Orchestrator::stop (cancel)",
            ),
            need("states:DescribeExecution", Executions, "ExecutionLog"),
            need(
                "states:GetExecutionHistory",
                Executions,
                "ExecutionLog (execution view)",
            ),
            need(
                "secretsmanager:GetSecretValue",
                UploadSigningSecret,
                "SecretCache: upload signing",
            ),
            need(
                "secretsmanager:GetSecretValue",
                WebhookSigningSecret,
                "SecretCache: webhook signing",
            ),
            // Webhooks: subscriptions and their failure lists; a replay goes to the queue.
            need(
                "dynamodb:PutItem",
                WebhooksTable,
                "WebhookStore::create_webhook",
            ),
            need(
                "dynamodb:GetItem",
                WebhooksTable,
                "WebhookStore::get_webhook",
            ),
            need(
                "dynamodb:Query",
                WebhooksTable,
                "WebhookStore::list_webhooks, failures",
            ),
            need(
                "dynamodb:DeleteItem",
                WebhooksTable,
                "WebhookStore::delete_webhook, replay",
            ),
            need("sqs:SendMessage", WebhookQueue, "WebhookStore::replay"),
        ]),
        Function::Stage(Stage::Ingest) => out.extend(STAGE_JOB.into_iter().chain([
            need("s3:GetObject", Documents("*"), "the upload, the document"),
            need("s3:PutObject", Documents("*"), "documents/, blueprints/"),
            need("s3:DeleteObject", Documents("*"), "the upload once moved"),
            need(
                "s3:ListBucket",
                DocumentsBucket,
                "an absent upload is NOT_FOUND",
            ),
            need("dynamodb:GetItem", PreviewCacheTable, "dedupe lookup"),
            need(
                "s3:GetObject",
                Results("results/*"),
                "dedupe: the earlier result",
            ),
            need(
                "s3:ListBucket",
                ResultsBucket,
                "dedupe: an expired result is absent",
            ),
        ])),
        Function::Stage(Stage::Ocr) => out.extend(STAGE_JOB.into_iter().chain([
            need("s3:GetObject", Documents("documents/*"), "the document"),
            need("s3:GetObject", Documents("blueprints/*"), "the blueprint"),
            need("s3:GetObject", Documents("textract/*"), "Textract staging"),
            need("s3:PutObject", Documents("textract/*"), "Textract staging"),
            need(
                "s3:DeleteObject",
                Documents("textract/*"),
                "Textract staging",
            ),
            need("s3:PutObject", Results("ocr/*"), "the document model"),
            need("textract:DetectDocumentText", Any, "one-page documents"),
            need(
                "textract:StartDocumentTextDetection",
                Any,
                "multi-page PDFs",
            ),
            need("textract:GetDocumentTextDetection", Any, "multi-page PDFs"),
        ])),
        Function::Stage(Stage::Extract) => out.extend(STAGE_JOB.into_iter().chain([
            need("s3:GetObject", Documents("documents/*"), "the document"),
            need("s3:GetObject", Documents("blueprints/*"), "the blueprint"),
            need("s3:GetObject", Results("ocr/*"), "the document model"),
            need("s3:PutObject", Results("results/*"), "the extraction"),
            need("bedrock:InvokeModel", BedrockModels, "Converse"),
        ])),
        Function::Stage(Stage::Verify) => out.extend(STAGE_JOB.into_iter().chain([
            need("s3:GetObject", Results("results/*"), "the extraction"),
            need("s3:PutObject", Results("results/*"), "the verification"),
        ])),
        Function::Stage(Stage::Finalize) => out.extend(
            STAGE_JOB
                .into_iter()
                .chain([
                    need("s3:GetObject", Results("results/*"), "the verification"),
                    need("s3:PutObject", Results("results/*"), "the result"),
                    need(
                        "dynamodb:PutItem",
                        PreviewCacheTable,
                        "dedupe: offer the result",
                    ),
                ])
                .chain(DROP_DOCUMENT),
        ),
        Function::Stage(Stage::RecordFailure) => {
            out.extend(STAGE_JOB.into_iter().chain(DROP_DOCUMENT))
        }
        // The stream records themselves are read by the event source mapping.
        Function::PublishEvents => out.push(need(
            "events:PutEvents",
            EventBus,
            "EventBridgePublisher::publish",
        )),
        Function::DeliverWebhooks => out.extend([
            need("dynamodb:GetItem", JobsTable, "the job's owner"),
            need("dynamodb:Query", WebhooksTable, "the owner's webhooks"),
            need(
                "dynamodb:PutItem",
                WebhooksTable,
                "a day of failures: the failure list",
            ),
            need(
                "sqs:ChangeMessageVisibility",
                WebhookQueue,
                "Queue::delay: the next retry",
            ),
            need(
                "sqs:SendMessage",
                WebhookDeadLetterQueue,
                "an unreadable message, with the reason",
            ),
        ]),
        Function::Intake => out.extend([
            need(
                "dynamodb:GetItem",
                ApiKeysTable,
                "the tenant is an active API key",
            ),
            need(
                "dynamodb:PutItem",
                IdempotencyTable,
                "the claim on key + ETag or idempotency_key",
            ),
            need(
                "dynamodb:GetItem",
                IdempotencyTable,
                "an earlier delivery's claim",
            ),
            need("dynamodb:PutItem", JobsTable, "JobStore::create"),
            need(
                "dynamodb:GetItem",
                JobsTable,
                "the job an earlier delivery made",
            ),
            need(
                "dynamodb:UpdateItem",
                JobsTable,
                "lifecycle::fail when the execution cannot start",
            ),
            need(
                "s3:GetObject",
                Documents("intake/*"),
                "the size of an intake message's document",
            ),
            need(
                "s3:ListBucket",
                DocumentsBucket,
                "an absent document is refused",
            ),
            need("states:StartExecution", StateMachine, "Orchestrator::start"),
            need(
                "sqs:SendMessage",
                IntakeDeadLetterQueue,
                "a refused message, with its reason",
            ),
        ]),
        Function::Reconcile => out.extend(STAGE_JOB),
    }
    out
}

/// The IAM action of an SDK operation.
pub fn action_of(operation: &str) -> Option<&'static str> {
    SDK_OPERATIONS
        .iter()
        .find(|(op, _)| *op == operation)
        .map(|(_, action)| *action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_need_is_an_action_of_some_operation() {
        for f in Function::ALL {
            for n in needs(f) {
                assert!(
                    SDK_OPERATIONS.iter().any(|(_, a)| *a == n.action),
                    "{f:?} needs {} which no adapter call uses",
                    n.action
                );
            }
        }
    }
}

//! Settings of the AWS deployment and the one shared [`SdkConfig`].
//!
//! Precedence, as everywhere in docpipe: defaults, then Parameter Store (the deployed
//! "file": `/docpipe/{env}/NAME`, see [`crate::params`]), then `DOCPIPE_*` environment
//! variables (what the SAM template sets per function). [`AwsSettings::from_env`] is the
//! only reader of the environment in the Lambda functions.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use docpipe_core::ports::StageSettings;
use docpipe_core::retention::Retention;

/// A setting that is malformed, unknown or missing.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("unknown setting {0} (known: {known})", known = KNOWN.join(", "))]
    Unknown(String),
    #[error("setting {name}: {why}")]
    Invalid { name: String, why: String },
}

pub type Result<T, E = SettingsError> = std::result::Result<T, E>;

/// The default Bedrock model: cheap, supports tool use in Converse.
pub const DEFAULT_MODEL_ID: &str = "anthropic.claude-3-haiku-20240307-v1:0";

/// Setting names without the `DOCPIPE_` prefix, lowercase (as Parameter Store names them).
const KNOWN: &[&str] = &[
    "env",
    "aws_endpoint_url",
    "jobs_table",
    "preview_cache_table",
    "api_keys_table",
    "idempotency_table",
    "webhooks_table",
    "documents_bucket",
    "results_bucket",
    "state_machine_arn",
    "bedrock_model_id",
    "bedrock_max_tokens",
    "parameter_prefix",
    "api_key_secret",
    "upload_signing_secret",
    "webhook_secret",
    "event_bus",
    "intake_dead_letter_url",
    "webhook_dead_letter_url",
    "webhook_queue_url",
    "final_jobs_secs",
    "idempotency_secs",
    "textract_poll_ms",
    "max_document_mib",
    "review_confidence_threshold",
    "dedupe_ttl_secs",
    "delete_document_when_final",
    "log",
];

/// Everything a docpipe Lambda (or an adapter test) needs to know about its deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsSettings {
    /// `dev` or `prod`: part of every resource name.
    pub env: String,
    /// Endpoint override for every client (moto in tests); also switches S3 to path-style
    /// addressing, which emulators need.
    pub endpoint_url: Option<String>,
    pub jobs_table: String,
    pub preview_cache_table: String,
    pub api_keys_table: String,
    pub idempotency_table: String,
    /// Webhook subscriptions (partition key `owner`, sort key `webhook_id`).
    pub webhooks_table: String,
    pub documents_bucket: String,
    pub results_bucket: String,
    /// Needed by the API only (it starts executions).
    pub state_machine_arn: Option<String>,
    pub bedrock_model_id: String,
    pub bedrock_max_tokens: i32,
    /// Where [`crate::params::ParameterStore`] looks: `/docpipe/{env}/`.
    pub parameter_prefix: String,
    /// A Secrets Manager secret id the API may read (cached); unused by the stages.
    pub api_key_secret: Option<String>,
    /// The Secrets Manager secret (id or ARN) that signs upload links (the API's).
    pub upload_signing_secret: Option<String>,
    /// The Secrets Manager secret (id or ARN) that signs webhook deliveries.
    pub webhook_secret: Option<String>,
    /// The EventBridge bus that `job.status.v1` events are put on (the event publisher's).
    pub event_bus: Option<String>,
    /// The intake queue's dead-letter queue (URL): refused messages go there with their
    /// reason (the intake starter's).
    pub intake_dead_letter_url: Option<String>,
    /// The webhook queue's dead-letter queue (URL): unreadable messages go there with the
    /// reason (the webhook deliverer's).
    pub webhook_dead_letter_url: Option<String>,
    /// The webhook queue (URL): where the API replays a webhook's failures.
    pub webhook_queue_url: Option<String>,
    /// How long final jobs and idempotency records are kept (TTL attributes): the core's
    /// numbers, the same as on the embedded host.
    pub retention: Retention,
    /// First poll interval of asynchronous Textract jobs (doubles up to 5 s).
    pub textract_poll: Duration,
    /// A tracing filter, as `DOCPIPE_LOG` locally.
    pub log: String,
    pub stage: StageSettings,
}

impl AwsSettings {
    /// The defaults for an environment: resource names `docpipe-{env}-...`.
    pub fn for_env(env: &str) -> Self {
        Self {
            env: env.to_owned(),
            endpoint_url: None,
            jobs_table: format!("docpipe-{env}-jobs"),
            preview_cache_table: format!("docpipe-{env}-preview-cache"),
            api_keys_table: format!("docpipe-{env}-api-keys"),
            idempotency_table: format!("docpipe-{env}-idempotency"),
            webhooks_table: format!("docpipe-{env}-webhooks"),
            documents_bucket: format!("docpipe-{env}-documents"),
            results_bucket: format!("docpipe-{env}-results"),
            state_machine_arn: None,
            bedrock_model_id: DEFAULT_MODEL_ID.to_owned(),
            bedrock_max_tokens: 4096,
            parameter_prefix: format!("/docpipe/{env}/"),
            api_key_secret: None,
            upload_signing_secret: None,
            webhook_secret: None,
            event_bus: None,
            intake_dead_letter_url: None,
            webhook_dead_letter_url: None,
            webhook_queue_url: None,
            retention: Retention::default(),
            textract_poll: Duration::from_millis(1000),
            log: "info".to_owned(),
            stage: StageSettings {
                dedupe_ttl_secs: crate::preview_cache::PREVIEW_TTL_SECS,
                ..StageSettings::default()
            },
        }
    }

    /// Reads the process environment: `DOCPIPE_ENV` first (it names the defaults), then
    /// every other `DOCPIPE_*` variable. An unknown `DOCPIPE_*` variable is an error.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(std::env::vars())
    }

    /// As [`AwsSettings::from_env`], over any list of variables (for tests).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("DOCPIPE_")
                    .map(|name| (name.to_ascii_lowercase(), v))
            })
            .collect();
        let env = vars
            .iter()
            .find(|(k, _)| k == "env")
            .map_or("dev", |(_, v)| v.as_str());
        check_env_name(env)?;
        let mut settings = Self::for_env(env);
        for (name, value) in &vars {
            settings.set(name, value)?;
        }
        Ok(settings)
    }

    /// Sets one setting by its lowercase name.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let invalid = |why: &str| SettingsError::Invalid {
            name: name.to_owned(),
            why: why.to_owned(),
        };
        let text = || -> Result<String> {
            let v = value.trim();
            if v.is_empty() {
                return Err(invalid("must not be empty"));
            }
            Ok(v.to_owned())
        };
        match name {
            "env" => {
                check_env_name(value)?;
                self.env = value.to_owned();
            }
            "aws_endpoint_url" => self.endpoint_url = Some(text()?),
            "jobs_table" => self.jobs_table = text()?,
            "preview_cache_table" => self.preview_cache_table = text()?,
            "api_keys_table" => self.api_keys_table = text()?,
            "idempotency_table" => self.idempotency_table = text()?,
            "webhooks_table" => self.webhooks_table = text()?,
            "documents_bucket" => self.documents_bucket = text()?,
            "results_bucket" => self.results_bucket = text()?,
            "state_machine_arn" => self.state_machine_arn = Some(text()?),
            "bedrock_model_id" => self.bedrock_model_id = text()?,
            "bedrock_max_tokens" => {
                self.bedrock_max_tokens = value
                    .trim()
                    .parse::<i32>()
                    .ok()
                    .filter(|n| (1..=64_000).contains(n))
                    .ok_or_else(|| invalid("must be an integer in 1..=64000"))?;
            }
            "parameter_prefix" => {
                let p = text()?;
                if !p.starts_with('/') || !p.ends_with('/') {
                    return Err(invalid("must start and end with '/'"));
                }
                self.parameter_prefix = p;
            }
            "api_key_secret" => self.api_key_secret = Some(text()?),
            "upload_signing_secret" => self.upload_signing_secret = Some(text()?),
            "webhook_secret" => self.webhook_secret = Some(text()?),
            "event_bus" => self.event_bus = Some(text()?),
            "intake_dead_letter_url" => self.intake_dead_letter_url = Some(text()?),
            "webhook_dead_letter_url" => self.webhook_dead_letter_url = Some(text()?),
            "webhook_queue_url" => self.webhook_queue_url = Some(text()?),
            "final_jobs_secs" | "idempotency_secs" => {
                let secs = value
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (60..=365 * 24 * 3600).contains(n))
                    .ok_or_else(|| invalid("must be seconds from 60 up to a year"))?;
                if name == "final_jobs_secs" {
                    self.retention.final_jobs_secs = secs;
                } else {
                    self.retention.idempotency_secs = secs;
                }
            }
            "textract_poll_ms" => {
                let ms = value
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n <= 60_000)
                    .ok_or_else(|| invalid("must be milliseconds in 0..=60000"))?;
                self.textract_poll = Duration::from_millis(ms);
            }
            "dedupe_ttl_secs" => {
                self.stage.dedupe_ttl_secs = value
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n <= 30 * 24 * 3600)
                    .ok_or_else(|| invalid("must be a number of seconds up to 30 days"))?;
            }
            "max_document_mib" => {
                let mib = value
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=500).contains(n))
                    .ok_or_else(|| invalid("must be an integer in 1..=500"))?;
                self.stage.max_document_bytes = mib * 1024 * 1024;
            }
            "review_confidence_threshold" => {
                self.stage.review_confidence_threshold = value
                    .trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|t| (0.0..=1.0).contains(t))
                    .ok_or_else(|| invalid("must be a number in 0..=1"))?;
            }
            "delete_document_when_final" => {
                self.retention.delete_document_when_final =
                    match value.trim().to_ascii_lowercase().as_str() {
                        "1" | "true" | "yes" | "on" => true,
                        "0" | "false" | "no" | "off" => false,
                        _ => return Err(invalid("must be true or false")),
                    };
            }
            "log" => self.log = text()?,
            other => {
                return Err(SettingsError::Unknown(format!(
                    "DOCPIPE_{}",
                    other.to_ascii_uppercase()
                )));
            }
        }
        Ok(())
    }

    /// Whether `name` (lowercase, no prefix) is a setting.
    pub fn is_known(name: &str) -> bool {
        KNOWN.contains(&name)
    }

    /// The shared SDK configuration: region and credentials from the standard chain (the
    /// Lambda role on AWS), the endpoint override if set. Built once per process.
    pub async fn sdk_config(&self) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        loader.load().await
    }
}

/// The SDK configuration the adapter tests use against an emulator: fixed region, dummy
/// credentials, the emulator's endpoint; reads nothing from the environment.
pub fn emulator_sdk_config(endpoint_url: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint_url)
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(
                    "testing", "testing", None, None, "emulator",
                ),
            ),
        )
        .build()
}

fn check_env_name(env: &str) -> Result<()> {
    let ok = !env.is_empty()
        && env.len() <= 16
        && env
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(SettingsError::Invalid {
            name: "env".into(),
            why: format!("{env:?} must be 1..=16 of [a-z0-9-]"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn names_follow_the_environment() {
        let s = AwsSettings::from_vars(vars(&[("DOCPIPE_ENV", "prod"), ("PATH", "/bin")]))
            .expect("valid");
        assert_eq!(s.jobs_table, "docpipe-prod-jobs");
        assert_eq!(s.documents_bucket, "docpipe-prod-documents");
        assert_eq!(s.results_bucket, "docpipe-prod-results");
        assert_eq!(s.parameter_prefix, "/docpipe/prod/");
    }

    #[test]
    fn variables_override_defaults_and_unknown_ones_fail() {
        let s = AwsSettings::from_vars(vars(&[
            ("DOCPIPE_JOBS_TABLE", "t"),
            ("DOCPIPE_MAX_DOCUMENT_MIB", "10"),
        ]))
        .expect("valid");
        assert_eq!(s.jobs_table, "t");
        assert_eq!(s.stage.max_document_bytes, 10 * 1024 * 1024);
        let err = AwsSettings::from_vars(vars(&[("DOCPIPE_JOBS_TABEL", "t")])).expect_err("typo");
        assert!(err.to_string().contains("DOCPIPE_JOBS_TABEL"), "{err}");
        assert!(AwsSettings::from_vars(vars(&[("DOCPIPE_ENV", "Prod!")])).is_err());
        assert!(
            AwsSettings::from_vars(vars(&[("DOCPIPE_REVIEW_CONFIDENCE_THRESHOLD", "2")])).is_err()
        );
    }

    #[test]
    fn documents_can_be_deleted_when_jobs_end() {
        let off = AwsSettings::from_vars(vars(&[])).expect("valid");
        assert!(!off.retention.delete_document_when_final);
        let on = AwsSettings::from_vars(vars(&[("DOCPIPE_DELETE_DOCUMENT_WHEN_FINAL", "true")]))
            .expect("valid");
        assert!(on.retention.delete_document_when_final);
        assert!(
            AwsSettings::from_vars(vars(&[("DOCPIPE_DELETE_DOCUMENT_WHEN_FINAL", "maybe")]))
                .is_err()
        );
    }
}

//! `docpipe keys create|list|revoke`: API keys in the local store that `docpipe serve`
//! reads, or (`create --aws`, in a build with the `aws` feature) in an AWS deployment's
//! keys table. Only the key's sha256 is stored; `create` prints the key once.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use docpipe_core::keys::{generate_secret, hash_key};
use docpipe_core::{ApiKey, KeyStore};

use super::outln;
use crate::settings::Settings;

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a key; the key is printed once, alone on stdout.
    Create {
        name: String,
        /// Requests per minute (default: the `default_rate_limit_per_minute` setting).
        #[arg(long)]
        rate_limit: Option<u32>,
        /// The key's jobs delete their uploaded document (and the text read from it) as
        /// soon as they are final, keeping the result; decided when each job is submitted.
        #[arg(long)]
        delete_documents_when_final: bool,
        /// Create it in the AWS deployment's table (`docpipe-{env}-api-keys`) instead, with
        /// the credentials and region of the standard AWS chain (profile, environment).
        /// Needs a build with `--features aws`.
        #[arg(long)]
        aws: bool,
        /// The deployment environment, with `--aws`.
        #[arg(long, default_value = "dev", requires = "aws")]
        env: String,
    },
    /// List keys (never the keys themselves).
    List,
    /// Deactivate a key.
    Revoke { name: String },
}

/// A new key named `name` and its secret (printed once, never stored).
fn new_key(
    name: String,
    rate_limit_per_minute: u32,
    delete_document_when_final: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(ApiKey, String)> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        anyhow::bail!("a key name is 1..=64 characters of [A-Za-z0-9._-]");
    }
    let secret = generate_secret()?;
    let key = ApiKey {
        name,
        key_hash: hash_key(&secret),
        active: true,
        rate_limit_per_minute: rate_limit_per_minute.max(1),
        created_at: now,
        last_used_at: None,
        request_count: 0,
        delete_document_when_final,
    };
    Ok((key, secret))
}

pub(crate) async fn keys(settings: &Settings, cmd: KeysCommand) -> Result<ExitCode> {
    if let KeysCommand::Create {
        name,
        rate_limit,
        delete_documents_when_final,
        aws: true,
        env,
    } = cmd
    {
        let (key, secret) = new_key(
            name,
            rate_limit.unwrap_or(settings.default_rate_limit_per_minute),
            delete_documents_when_final,
            chrono::Utc::now(),
        )?;
        aws_keys::create(&env, &key).await?;
        outln!("{secret}")?;
        return Ok(ExitCode::SUCCESS);
    }
    let pipeline = super::open_pipeline(settings)?;
    let store = pipeline.store();
    match cmd {
        KeysCommand::Create {
            name,
            rate_limit,
            delete_documents_when_final,
            ..
        } => {
            let (key, secret) = new_key(
                name,
                rate_limit.unwrap_or(settings.default_rate_limit_per_minute),
                delete_documents_when_final,
                pipeline.ports().clock.now(),
            )?;
            store.create(&key).await?;
            outln!("{secret}")?;
        }
        KeysCommand::List => {
            outln!(
                "{:<24}  {:<8}  {:>10}  {:>10}  {:<9}  LAST USED",
                "NAME",
                "ACTIVE",
                "LIMIT/MIN",
                "REQUESTS",
                "DOCUMENTS"
            )?;
            for k in KeyStore::list(store).await? {
                outln!(
                    "{:<24}  {:<8}  {:>10}  {:>10}  {:<9}  {}",
                    k.name,
                    if k.active { "yes" } else { "revoked" },
                    k.rate_limit_per_minute,
                    k.request_count,
                    if k.delete_document_when_final {
                        "deleted"
                    } else {
                        "kept"
                    },
                    k.last_used_at
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_else(|| "-".into())
                )?;
            }
        }
        KeysCommand::Revoke { name } => {
            store.revoke(&name).await?;
            eprintln!("revoked {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Keys in an AWS deployment's table (DynamoDB, conditional put: an existing name is
/// refused).
#[cfg(feature = "aws")]
mod aws_keys {
    use anyhow::{Context, Result};
    use docpipe_aws::{AwsAdapters, AwsSettings};
    use docpipe_core::{ApiKey, KeyStore};

    pub(super) async fn create(env: &str, key: &ApiKey) -> Result<()> {
        let settings = AwsSettings::from_vars([("DOCPIPE_ENV".to_owned(), env.to_owned())])?;
        let sdk = settings.sdk_config().await;
        let table = settings.api_keys_table.clone();
        let adapters = AwsAdapters::new(settings, sdk);
        adapters
            .keys
            .create(key)
            .await
            .with_context(|| format!("creating key {} in {table}", key.name))?;
        eprintln!("created key {} in {table}", key.name);
        Ok(())
    }
}

#[cfg(not(feature = "aws"))]
mod aws_keys {
    use anyhow::{Result, bail};
    use docpipe_core::ApiKey;

    pub(super) async fn create(_env: &str, _key: &ApiKey) -> Result<()> {
        bail!(
            "this docpipe was built without AWS support; build it with \
             `cargo build --release --bin docpipe --features aws`"
        )
    }
}

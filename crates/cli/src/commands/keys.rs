//! `docpipe keys create|list|revoke`: API keys in the local store that `docpipe serve`
//! reads. Only the key's sha256 is stored; `create` prints the key once.

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
    },
    /// List keys (never the keys themselves).
    List,
    /// Deactivate a key.
    Revoke { name: String },
}

pub(crate) async fn keys(settings: &Settings, cmd: KeysCommand) -> Result<ExitCode> {
    let pipeline = super::open_pipeline(settings)?;
    let store = pipeline.store();
    match cmd {
        KeysCommand::Create { name, rate_limit } => {
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
                rate_limit_per_minute: rate_limit
                    .unwrap_or(settings.default_rate_limit_per_minute)
                    .max(1),
                created_at: pipeline.ports().clock.now(),
                last_used_at: None,
                request_count: 0,
            };
            store.create(&key).await?;
            outln!("{secret}")?;
        }
        KeysCommand::List => {
            outln!(
                "{:<24}  {:<8}  {:>10}  {:>10}  LAST USED",
                "NAME",
                "ACTIVE",
                "LIMIT/MIN",
                "REQUESTS"
            )?;
            for k in KeyStore::list(store).await? {
                outln!(
                    "{:<24}  {:<8}  {:>10}  {:>10}  {}",
                    k.name,
                    if k.active { "yes" } else { "revoked" },
                    k.rate_limit_per_minute,
                    k.request_count,
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

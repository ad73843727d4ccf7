//! Settings from Parameter Store and secrets from Secrets Manager, both cached for five
//! minutes so a warm Lambda does not call either on every invocation, and a changed
//! parameter or a rotated secret is in use within five minutes. Time is the [`Clock`]
//! port's, so tests run the refresh on a virtual clock.
//!
//! Parameters live under the settings' prefix (`/docpipe/{env}/`), one per setting, named
//! as the lowercase setting (`/docpipe/dev/bedrock_model_id`). An unknown parameter is
//! logged and skipped rather than refused: parameters are shared by every deployed
//! version, and one added for a newer version must not stop an older one from starting.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_secretsmanager::Client as SecretsClient;
use aws_sdk_ssm::Client as SsmClient;
use chrono::{DateTime, Utc};
use docpipe_core::ports::Result;
use docpipe_core::{Clock, ErrorCode, StageError};
use tokio::sync::Mutex;

use crate::config::AwsSettings;
use crate::error::sdk_error;

/// How long a secret is reused before it is fetched again (rotation takes effect within).
pub const SECRET_TTL: Duration = Duration::from_secs(300);

/// How long Parameter Store values are reused before they are read again.
pub const PARAMETER_TTL: Duration = Duration::from_secs(300);

struct Cached<T> {
    at: DateTime<Utc>,
    value: T,
}

impl<T> Cached<T> {
    fn fresh(&self, now: DateTime<Utc>, ttl: Duration) -> bool {
        chrono::Duration::from_std(ttl).is_ok_and(|ttl| now.signed_duration_since(self.at) < ttl)
    }
}

/// The parameters under one prefix, cached for `ttl`.
pub struct ParameterStore {
    client: SsmClient,
    prefix: String,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    cache: Mutex<Option<Cached<BTreeMap<String, String>>>>,
}

impl ParameterStore {
    pub fn new(
        client: SsmClient,
        prefix: impl Into<String>,
        ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            prefix: prefix.into(),
            ttl,
            clock,
            cache: Mutex::new(None),
        }
    }

    /// Every parameter under the prefix, by its name without the prefix: the cached ones
    /// while younger than the TTL, else read again.
    pub async fn all(&self) -> Result<BTreeMap<String, String>> {
        let mut cache = self.cache.lock().await;
        let now = self.clock.now();
        if let Some(c) = cache.as_ref()
            && c.fresh(now, self.ttl)
        {
            return Ok(c.value.clone());
        }
        let mut values = BTreeMap::new();
        let mut pages = self
            .client
            .get_parameters_by_path()
            .path(&self.prefix)
            .recursive(false)
            .with_decryption(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("SSM GetParametersByPath", e))?;
            for p in page.parameters() {
                if let (Some(name), Some(value)) = (p.name(), p.value())
                    && let Some(short) = name.strip_prefix(&self.prefix)
                {
                    values.insert(short.to_owned(), value.to_owned());
                }
            }
        }
        *cache = Some(Cached {
            at: now,
            value: values.clone(),
        });
        Ok(values)
    }

    /// Applies the parameters to `settings` (they sit between defaults and environment
    /// variables: apply them before the variables).
    pub async fn apply(&self, settings: &mut AwsSettings) -> Result<()> {
        for (name, value) in self.all().await? {
            if !AwsSettings::is_known(&name) {
                tracing::warn!(parameter = %format!("{}{name}", self.prefix), "unknown parameter skipped");
                continue;
            }
            settings.set(&name, &value).map_err(|e| {
                StageError::new(ErrorCode::ValidationError, format!("parameter store: {e}"))
            })?;
        }
        Ok(())
    }
}

/// Secrets by id, each cached for [`SECRET_TTL`].
pub struct SecretCache {
    client: SecretsClient,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    cache: Mutex<BTreeMap<String, Cached<String>>>,
}

impl SecretCache {
    pub fn new(client: SecretsClient, clock: Arc<dyn Clock>) -> Self {
        Self::with_ttl(client, SECRET_TTL, clock)
    }

    pub fn with_ttl(client: SecretsClient, ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            ttl,
            clock,
            cache: Mutex::new(BTreeMap::new()),
        }
    }

    /// The secret's string value: the cached one while younger than the TTL, else read
    /// again (a rotated secret is in use within the TTL).
    pub async fn get(&self, id: &str) -> Result<String> {
        let mut cache = self.cache.lock().await;
        let now = self.clock.now();
        if let Some(c) = cache.get(id)
            && c.fresh(now, self.ttl)
        {
            return Ok(c.value.clone());
        }
        let out = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| sdk_error("Secrets Manager GetSecretValue", e))?;
        let value = out
            .secret_string()
            .ok_or_else(|| StageError::internal(format!("secret {id} has no string value")))?
            .to_owned();
        cache.insert(
            id.to_owned(),
            Cached {
                at: now,
                value: value.clone(),
            },
        );
        Ok(value)
    }
}

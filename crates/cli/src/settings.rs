//! Typed settings, loaded once: defaults, then `docpipe.toml`, then `DOCPIPE_*`
//! environment variables, then command-line flags. Nothing else reads the environment.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use docpipe_core::retention::Retention;
use docpipe_local::chat_extractor::{Secret, completions_url};
use docpipe_local::faults::{FaultInjection, FaultMode};
use serde::Deserialize;

/// Which extractor reads invoices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ExtractorChoice {
    /// The rule-based extractor (embedded e-invoice XML first, then layout rules).
    Rules,
    /// A language model behind an OpenAI-compatible chat-completions server.
    Openai,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Settings {
    /// Data folder: the SQLite database and the object store.
    pub home: PathBuf,
    /// Largest accepted document.
    pub max_document_mib: u64,
    /// A field under this confidence sends the job to review.
    pub review_confidence_threshold: f32,
    /// Jobs executed at once by `docpipe run`.
    pub concurrency: usize,
    /// Bounds of the document-parsing worker process.
    pub worker_timeout_secs: u64,
    pub worker_memory_mib: u64,
    pub worker_cpu_secs: u64,
    /// A `tracing` filter, e.g. `info` or `docpipe=debug`.
    pub log: String,
    /// `docpipe serve`: where to listen.
    pub bind: String,
    /// How clients reach the server (for presigned upload URLs); default `http://{bind}`.
    pub public_url: Option<String>,
    /// Origins allowed by CORS (`*` for any).
    pub cors_origins: Vec<String>,
    /// Executions at once in `docpipe serve`.
    pub workers: usize,
    /// Jobs waiting for a worker before new ones are refused with 503.
    pub queue_capacity: usize,
    /// How long a shutdown waits for running executions.
    pub drain_secs: u64,
    /// `docpipe serve`: a client has this long to send a request's headers (also how
    /// long an idle kept-alive connection stays open).
    pub header_timeout_secs: u64,
    /// `docpipe serve`: the longest wait for the next piece of a request body.
    pub body_timeout_secs: u64,
    /// Requests per minute for keys created without their own limit.
    pub default_rate_limit_per_minute: u32,
    /// `host:port` pairs that URL ingest may fetch although they are not public addresses.
    pub url_allowed_hosts: Vec<String>,
    /// Read embedded e-invoice XML (Factur-X, ZUGFeRD, XRechnung) before the printed text.
    pub embedded_xml: bool,
    /// Content-hash dedupe: a document identical to one finished this long ago or less
    /// (same bytes, kind and settings) reuses its result; 0 turns dedupe off.
    pub dedupe_ttl_secs: u64,
    /// Which extractor reads invoices: `rules` or `openai`.
    pub extractor: ExtractorChoice,
    /// `openai`: the API's base URL; requests go to `{llm_base_url}/chat/completions`.
    pub llm_base_url: String,
    /// `openai`: the model name the server knows.
    pub llm_model: String,
    /// `openai`: sent as a bearer token when set.
    pub llm_api_key: Option<Secret>,
    /// `openai`: how long one request may take (under the Extract state's 300 s).
    pub llm_timeout_secs: u64,
    /// `openai`: the longest reply, in tokens.
    pub llm_max_tokens: u32,
    /// How long jobs, objects and idempotency records are kept (`[retention]`).
    pub retention: Retention,
    /// `docpipe serve`: seconds between retention sweeps (0: never; `docpipe gc` by hand).
    pub gc_interval_secs: u64,
    /// `docpipe serve`: a folder whose new files become jobs (as `docpipe watch` does).
    pub watch_dir: Option<PathBuf>,
    /// Reliability testing only: make stage tries fail (`probability`, `mode`, `seed`).
    pub fault_injection: FaultInjection,
    /// Fault injection is refused unless this is set: it never switches on by accident in
    /// a deployment.
    pub allow_fault_injection: bool,
}

/// The Extract state's `TimeoutSeconds` in the definition: a request must give up first,
/// so that a slow server is a retried `SERVICE_UNAVAILABLE`, not a `STAGE_TIMEOUT`.
const MAX_LLM_TIMEOUT_SECS: u64 = 290;

impl Default for Settings {
    fn default() -> Self {
        Self {
            home: PathBuf::from(".docpipe"),
            max_document_mib: 50,
            review_confidence_threshold: 0.8,
            concurrency: std::thread::available_parallelism()
                .map(|n| n.get() * 2)
                .unwrap_or(4),
            worker_timeout_secs: 30,
            worker_memory_mib: 1024,
            worker_cpu_secs: 20,
            log: "error".into(),
            bind: "127.0.0.1:8080".into(),
            public_url: None,
            cors_origins: Vec::new(),
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            queue_capacity: 256,
            drain_secs: 30,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            default_rate_limit_per_minute: 60,
            url_allowed_hosts: Vec::new(),
            embedded_xml: true,
            dedupe_ttl_secs: 3600,
            extractor: ExtractorChoice::Rules,
            llm_base_url: "http://127.0.0.1:11434/v1".into(),
            llm_model: String::new(),
            llm_api_key: None,
            llm_timeout_secs: 120,
            llm_max_tokens: 4096,
            retention: Retention::default(),
            gc_interval_secs: 300,
            watch_dir: None,
            fault_injection: FaultInjection::default(),
            allow_fault_injection: false,
        }
    }
}

impl Settings {
    /// Loads the settings. `config` is an explicit file (which must exist); otherwise
    /// `./docpipe.toml` is read if present. `env` is the process environment.
    pub(crate) fn load(
        config: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("DOCPIPE_"))
            .collect();
        let explicit = config.map(Path::to_path_buf).or_else(|| {
            env.iter()
                .find(|(k, _)| k == "DOCPIPE_CONFIG")
                .map(|(_, v)| PathBuf::from(v))
        });
        let mut s = match explicit {
            Some(path) => Self::from_file(&path)?,
            None if Path::new("docpipe.toml").is_file() => {
                Self::from_file(Path::new("docpipe.toml"))?
            }
            None => Self::default(),
        };
        for (key, value) in &env {
            s.set_from_env(key, value)?;
        }
        s.validate()?;
        Ok(s)
    }

    fn from_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("in {}", path.display()))
    }

    fn set_from_env(&mut self, key: &str, value: &str) -> Result<()> {
        fn num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
            value
                .parse()
                .map_err(|_| anyhow::anyhow!("{key}={value:?} is not a valid number"))
        }
        match key {
            "DOCPIPE_CONFIG" => {}
            "DOCPIPE_HOME" => self.home = PathBuf::from(value),
            "DOCPIPE_MAX_DOCUMENT_MIB" => self.max_document_mib = num(key, value)?,
            "DOCPIPE_REVIEW_CONFIDENCE_THRESHOLD" => {
                self.review_confidence_threshold = num(key, value)?
            }
            "DOCPIPE_CONCURRENCY" => self.concurrency = num(key, value)?,
            "DOCPIPE_WORKER_TIMEOUT_SECS" => self.worker_timeout_secs = num(key, value)?,
            "DOCPIPE_WORKER_MEMORY_MIB" => self.worker_memory_mib = num(key, value)?,
            "DOCPIPE_WORKER_CPU_SECS" => self.worker_cpu_secs = num(key, value)?,
            "DOCPIPE_LOG" => self.log = value.to_owned(),
            "DOCPIPE_BIND" => self.bind = value.to_owned(),
            "DOCPIPE_PUBLIC_URL" => self.public_url = Some(value.to_owned()),
            "DOCPIPE_CORS_ORIGINS" => self.cors_origins = list(value),
            "DOCPIPE_WORKERS" => self.workers = num(key, value)?,
            "DOCPIPE_QUEUE_CAPACITY" => self.queue_capacity = num(key, value)?,
            "DOCPIPE_DRAIN_SECS" => self.drain_secs = num(key, value)?,
            "DOCPIPE_HEADER_TIMEOUT_SECS" => self.header_timeout_secs = num(key, value)?,
            "DOCPIPE_BODY_TIMEOUT_SECS" => self.body_timeout_secs = num(key, value)?,
            "DOCPIPE_DEFAULT_RATE_LIMIT_PER_MINUTE" => {
                self.default_rate_limit_per_minute = num(key, value)?
            }
            "DOCPIPE_URL_ALLOWED_HOSTS" => self.url_allowed_hosts = list(value),
            "DOCPIPE_DEDUPE_TTL_SECS" => self.dedupe_ttl_secs = num(key, value)?,
            "DOCPIPE_RETENTION_FINAL_JOBS_SECS" => {
                self.retention.final_jobs_secs = num(key, value)?
            }
            "DOCPIPE_RETENTION_OBJECTS_SECS" => self.retention.objects_secs = num(key, value)?,
            "DOCPIPE_RETENTION_IDEMPOTENCY_SECS" => {
                self.retention.idempotency_secs = num(key, value)?
            }
            "DOCPIPE_RETENTION_DELETE_DOCUMENT_WHEN_FINAL" => {
                self.retention.delete_document_when_final = boolean(key, value)?
            }
            "DOCPIPE_GC_INTERVAL_SECS" => self.gc_interval_secs = num(key, value)?,
            "DOCPIPE_WATCH_DIR" => self.watch_dir = Some(PathBuf::from(value)),
            "DOCPIPE_EXTRACTOR" => {
                self.extractor = match value.trim() {
                    "rules" => ExtractorChoice::Rules,
                    "openai" => ExtractorChoice::Openai,
                    _ => bail!("{key}={value:?} is not rules or openai"),
                }
            }
            "DOCPIPE_LLM_BASE_URL" => self.llm_base_url = value.to_owned(),
            "DOCPIPE_LLM_MODEL" => self.llm_model = value.to_owned(),
            "DOCPIPE_LLM_API_KEY" => {
                self.llm_api_key = Some(Secret::new(value)).filter(|_| !value.is_empty())
            }
            "DOCPIPE_LLM_TIMEOUT_SECS" => self.llm_timeout_secs = num(key, value)?,
            "DOCPIPE_LLM_MAX_TOKENS" => self.llm_max_tokens = num(key, value)?,
            "DOCPIPE_EMBEDDED_XML" => self.embedded_xml = boolean(key, value)?,
            "DOCPIPE_FAULT_INJECTION_PROBABILITY" => {
                self.fault_injection.probability = num(key, value)?
            }
            "DOCPIPE_FAULT_INJECTION_MODE" => {
                self.fault_injection.mode = FaultMode::parse(value).ok_or_else(|| {
                    anyhow::anyhow!("{key}={value:?} is not transient or permanent")
                })?
            }
            "DOCPIPE_FAULT_INJECTION_SEED" => self.fault_injection.seed = num(key, value)?,
            "DOCPIPE_ALLOW_FAULT_INJECTION" => self.allow_fault_injection = boolean(key, value)?,
            other => bail!("unknown setting {other} (see README: Settings)"),
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        if self.workers == 0 || self.queue_capacity == 0 {
            bail!("workers and queue_capacity must be at least 1");
        }
        if self.default_rate_limit_per_minute == 0 {
            bail!("default_rate_limit_per_minute must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.review_confidence_threshold) {
            bail!("review_confidence_threshold must be within 0..1");
        }
        if self.max_document_mib == 0 || self.max_document_mib > 1024 {
            bail!("max_document_mib must be within 1..=1024");
        }
        if self.header_timeout_secs == 0 || self.body_timeout_secs == 0 {
            bail!("header_timeout_secs and body_timeout_secs must be at least 1");
        }
        if self.concurrency == 0 {
            bail!("concurrency must be at least 1");
        }
        if self.worker_timeout_secs == 0 || self.worker_memory_mib < 64 {
            bail!("worker_timeout_secs must be positive and worker_memory_mib at least 64");
        }
        if self.extractor == ExtractorChoice::Openai {
            if self.llm_model.trim().is_empty() {
                bail!("extractor = \"openai\" needs llm_model (the model name the server knows)");
            }
            if let Err(e) = completions_url(&self.llm_base_url) {
                bail!("llm_base_url {e}");
            }
            if !(1..=MAX_LLM_TIMEOUT_SECS).contains(&self.llm_timeout_secs) {
                bail!("llm_timeout_secs must be within 1..={MAX_LLM_TIMEOUT_SECS}");
            }
            if self.llm_max_tokens == 0 {
                bail!("llm_max_tokens must be at least 1");
            }
        }
        let p = self.fault_injection.probability;
        if !(0.0..=1.0).contains(&p) {
            bail!("fault_injection.probability must be within 0..1");
        }
        if self.fault_injection.is_active() && !self.allow_fault_injection {
            bail!(
                "fault_injection makes jobs fail on purpose; it is for test environments and \
                 needs allow_fault_injection = true (never set it in production)"
            );
        }
        Ok(())
    }
}

/// A yes/no value.
fn boolean(key: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => bail!("{key}={value:?} is not true or false"),
    }
}

/// A comma-separated list.
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn file_then_environment_override_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("docpipe.toml");
        std::fs::write(
            &file,
            "home = \"/data\"\nconcurrency = 3\nmax_document_mib = 10\n",
        )
        .expect("write");
        let s = Settings::load(
            Some(&file),
            env(&[("DOCPIPE_CONCURRENCY", "7"), ("PATH", "x")]),
        )
        .expect("loads");
        assert_eq!(s.home, PathBuf::from("/data"));
        assert_eq!(s.concurrency, 7, "environment beats the file");
        assert_eq!(s.max_document_mib, 10, "file beats the default");
        assert_eq!(s.review_confidence_threshold, 0.8, "default kept");
    }

    #[test]
    fn mistakes_are_reported_not_ignored() {
        assert!(Settings::load(None, env(&[("DOCPIPE_CONCURENCY", "2")])).is_err());
        assert!(Settings::load(None, env(&[("DOCPIPE_CONCURRENCY", "two")])).is_err());
        assert!(
            Settings::load(None, env(&[("DOCPIPE_REVIEW_CONFIDENCE_THRESHOLD", "1.5")])).is_err()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("docpipe.toml");
        std::fs::write(&file, "hmoe = \"/data\"\n").expect("write");
        assert!(Settings::load(Some(&file), env(&[])).is_err());
    }

    #[test]
    fn embedded_xml_is_on_unless_switched_off() {
        assert!(Settings::load(None, env(&[])).expect("loads").embedded_xml);
        let off = Settings::load(None, env(&[("DOCPIPE_EMBEDDED_XML", "false")]));
        assert!(!off.expect("loads").embedded_xml);
        let on = Settings::load(None, env(&[("DOCPIPE_EMBEDDED_XML", "1")]));
        assert!(on.expect("loads").embedded_xml);
        assert!(Settings::load(None, env(&[("DOCPIPE_EMBEDDED_XML", "maybe")])).is_err());
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("docpipe.toml");
        std::fs::write(&file, "embedded_xml = false\n").expect("write");
        assert!(
            !Settings::load(Some(&file), env(&[]))
                .expect("loads")
                .embedded_xml
        );
    }

    #[test]
    fn the_rules_read_invoices_unless_a_model_is_configured() {
        let s = Settings::load(None, env(&[])).expect("loads");
        assert_eq!(s.extractor, ExtractorChoice::Rules);
        let s = Settings::load(
            None,
            env(&[
                ("DOCPIPE_EXTRACTOR", "openai"),
                ("DOCPIPE_LLM_MODEL", "qwen2.5:7b"),
                ("DOCPIPE_LLM_API_KEY", "sk-secret"),
                ("DOCPIPE_LLM_TIMEOUT_SECS", "30"),
            ]),
        )
        .expect("loads");
        assert_eq!(s.extractor, ExtractorChoice::Openai);
        assert_eq!(
            s.llm_base_url, "http://127.0.0.1:11434/v1",
            "Ollama's, by default"
        );
        assert_eq!(s.llm_timeout_secs, 30);
        assert_eq!(s.llm_max_tokens, 4096);
        assert!(
            !format!("{s:?}").contains("sk-secret"),
            "the key is never printed"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("docpipe.toml");
        std::fs::write(
            &file,
            "extractor = \"openai\"\nllm_model = \"m\"\nllm_base_url = \"http://gpu:8000/v1\"\n",
        )
        .expect("write");
        let s = Settings::load(Some(&file), env(&[])).expect("loads");
        assert_eq!(s.llm_base_url, "http://gpu:8000/v1");
        for bad in [
            vec![("DOCPIPE_EXTRACTOR", "gpt")],
            vec![("DOCPIPE_EXTRACTOR", "openai")],
            vec![
                ("DOCPIPE_EXTRACTOR", "openai"),
                ("DOCPIPE_LLM_MODEL", "m"),
                ("DOCPIPE_LLM_BASE_URL", "localhost:11434"),
            ],
            vec![
                ("DOCPIPE_EXTRACTOR", "openai"),
                ("DOCPIPE_LLM_MODEL", "m"),
                ("DOCPIPE_LLM_TIMEOUT_SECS", "600"),
            ],
            vec![("DOCPIPE_LLM_MAX_TOKENS", "many")],
        ] {
            assert!(Settings::load(None, env(&bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fault_injection_is_off_and_refused_unless_allowed() {
        let s = Settings::load(None, env(&[])).expect("loads");
        assert!(!s.fault_injection.is_active(), "off by default");
        let on = [
            ("DOCPIPE_FAULT_INJECTION_PROBABILITY", "0.3"),
            ("DOCPIPE_FAULT_INJECTION_MODE", "permanent"),
            ("DOCPIPE_FAULT_INJECTION_SEED", "42"),
        ];
        let refused = Settings::load(None, env(&on)).expect_err("refused");
        assert!(
            refused.to_string().contains("allow_fault_injection"),
            "{refused}"
        );
        let mut allowed = on.to_vec();
        allowed.push(("DOCPIPE_ALLOW_FAULT_INJECTION", "true"));
        let s = Settings::load(None, env(&allowed)).expect("loads");
        assert_eq!(
            s.fault_injection,
            FaultInjection {
                probability: 0.3,
                mode: FaultMode::Permanent,
                seed: 42
            }
        );
        for bad in [
            ("DOCPIPE_FAULT_INJECTION_PROBABILITY", "1.5"),
            ("DOCPIPE_FAULT_INJECTION_MODE", "sometimes"),
            ("DOCPIPE_FAULT_INJECTION_SEED", "-1"),
        ] {
            let mut e = allowed.clone();
            e.push(bad);
            assert!(Settings::load(None, env(&e)).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("docpipe.toml");
        std::fs::write(
            &file,
            "allow_fault_injection = true\n[fault_injection]\nprobability = 0.5\nmode = \"transient\"\nseed = 3\n",
        )
        .expect("write");
        let s = Settings::load(Some(&file), env(&[])).expect("loads");
        assert_eq!(s.fault_injection.probability, 0.5);
        assert_eq!(s.fault_injection.mode, FaultMode::Transient);
        std::fs::write(&file, "[fault_injection]\nprobability = 0.5\n").expect("write");
        assert!(
            Settings::load(Some(&file), env(&[])).is_err(),
            "not allowed in the file either"
        );
        std::fs::write(
            &file,
            "allow_fault_injection = true\n[fault_injection]\nprobabilty = 0.5\n",
        )
        .expect("write");
        assert!(
            Settings::load(Some(&file), env(&[])).is_err(),
            "unknown key"
        );
    }
}

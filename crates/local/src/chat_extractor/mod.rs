//! Invoice extraction by a language model behind an OpenAI-compatible chat-completions
//! server (Ollama, llama.cpp's `llama-server`, vLLM, or a hosted one): the document's
//! text in reading order goes to `POST {base}/chat/completions` with structured output
//! (`response_format: json_schema`, strict) whose schema is the invoice record every
//! model-backed extractor fills (`docpipe_core::invoice_record`). The answer is checked
//! like Bedrock's, then each value is rated by the evidence the document holds
//! ([`evidence`]); the verify stage then checks it like any other extractor's result.
//!
//! Failures keep the pipeline's error contract: the server unreachable, a 5xx or 408, or
//! no answer within the timeout is `SERVICE_UNAVAILABLE` (retried by the definition); a
//! 429 is `RATE_LIMITED` (retried); a reply that is not a chat completion, does not fit
//! the schema, or was cut at `max_tokens`, and any other 4xx, is `EXTRACTION_FAILED`; a
//! refusal (`message.refusal`, or `finish_reason: content_filter`) is
//! `EXTRACTION_REFUSED`. The API key is sent as a bearer token and never logged.

pub mod evidence;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use docpipe_core::invoice_record::{self, Judgement, RECORD_NAME, VALUE_RULES};
use docpipe_core::ports::Result;
use docpipe_core::{
    Clock, Document, ErrorCode, Extractor, InvoiceResult, ResultSource, StageError,
};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use docpipe_invoice::einvoice::{EmbeddedInvoice, read_before_printed_text};

/// The most bytes of a reply read; a server sending more is refused.
const MAX_REPLY_BYTES: usize = 8 * 1024 * 1024;

/// The most characters of a server's error text quoted in a job's error.
const MAX_QUOTED_CHARS: usize = 300;

/// A secret (the API key): printed as `***` by `Debug` so it never reaches a log.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where the model is and how it is asked.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// The API's base URL, as OpenAI's clients take it (`http://127.0.0.1:11434/v1`): the
    /// request goes to `{base_url}/chat/completions`. A URL with no path gets `/v1`, where
    /// Ollama, llama.cpp and vLLM all serve the API.
    pub base_url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer ...` when set (local servers need none).
    pub api_key: Option<Secret>,
    /// How long one request may take, reply included.
    pub timeout: Duration,
    /// The longest reply, in tokens; a reply cut there is `EXTRACTION_FAILED`.
    pub max_tokens: u32,
    /// Read an embedded e-invoice (Factur-X, ZUGFeRD, XRechnung) first; the model reads
    /// the printed text only when there is none.
    pub embedded_xml: bool,
}

/// The endpoint a base URL names: `{base}/chat/completions`, `/v1` added to a bare host.
pub fn completions_url(base_url: &str) -> std::result::Result<Url, String> {
    let mut url = Url::parse(base_url.trim()).map_err(|e| format!("{base_url:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{base_url:?} is not an http(s) URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{base_url:?} carries credentials; give the key as llm_api_key"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{base_url:?} has a query or fragment"));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    let path = if path.is_empty() { "/v1" } else { &path };
    url.set_path(&format!("{path}/chat/completions"));
    Ok(url)
}

/// What the model is told besides the document text.
fn system_prompt() -> String {
    format!(
        "You read invoices. Answer with the invoice's fields, lines and tax breakdown as \
         JSON fitting the {RECORD_NAME} schema, taking every value from the document text \
         that follows. {VALUE_RULES} Give null for anything the text does not show. Pages \
         are marked in the text as --- page N ---."
    )
}

/// The request body: the model, the two messages, strict structured output.
pub fn request_body(model: &str, max_tokens: u32, document: &Document) -> Value {
    let schema = invoice_record::strict_schema(&invoice_record::schema(Judgement::Caller));
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": system_prompt()},
            {"role": "user", "content": invoice_record::document_text(document)}
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": RECORD_NAME, "strict": true, "schema": schema}
        },
        "temperature": 0,
        "max_tokens": max_tokens,
        "stream": false
    })
}

/// The extractor over an OpenAI-compatible chat-completions server.
#[derive(Clone)]
pub struct ChatExtractor {
    http: reqwest::Client,
    url: Url,
    config: ChatConfig,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for ChatExtractor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatExtractor")
            .field("url", &self.url.as_str())
            .field("config", &self.config)
            .finish()
    }
}

impl ChatExtractor {
    /// Checks the configuration and builds the HTTP client once. The request timeout runs
    /// on `clock`, so tests drive it on virtual time.
    pub fn new(config: ChatConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let invalid = |why: String| StageError::new(ErrorCode::ValidationError, why);
        let url =
            completions_url(&config.base_url).map_err(|e| invalid(format!("llm_base_url {e}")))?;
        if config.model.trim().is_empty() {
            return Err(invalid("llm_model is empty".to_owned()));
        }
        if config.timeout.is_zero() || config.max_tokens == 0 {
            return Err(invalid(
                "llm_timeout_secs and llm_max_tokens must be positive".to_owned(),
            ));
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| StageError::internal(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            url,
            config,
            clock,
        })
    }

    /// The endpoint requests go to.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// One chat completion, raced against the timeout on the clock.
    async fn complete(&self, body: &Value) -> Result<Completion> {
        let timeout = self.config.timeout;
        tokio::select! {
            r = self.exchange(body) => r,
            () = self.clock.sleep(timeout) => Err(StageError::unavailable(format!(
                "the model server at {} did not answer within {} s",
                self.url,
                timeout.as_secs_f64()
            ))),
        }
    }

    async fn exchange(&self, body: &Value) -> Result<Completion> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| StageError::internal(format!("chat request: {e}")))?;
        let mut request = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes);
        if let Some(Secret(key)) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let mut response = request.send().await.map_err(|e| {
            StageError::unavailable(format!(
                "the model server at {} is unreachable: {e}",
                self.url
            ))
        })?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| {
            StageError::unavailable(format!("reading the model server's reply: {e}"))
        })? {
            if bytes.len() + chunk.len() > MAX_REPLY_BYTES {
                return Err(StageError::new(
                    ErrorCode::ExtractionFailed,
                    format!("the model server's reply is over {MAX_REPLY_BYTES} bytes"),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let code = match status.as_u16() {
                429 => ErrorCode::RateLimited,
                408 | 500..=599 => ErrorCode::ServiceUnavailable,
                _ => ErrorCode::ExtractionFailed,
            };
            return Err(StageError::new(
                code,
                format!(
                    "the model server answered {status}: {}",
                    server_message(&bytes)
                ),
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            StageError::new(
                ErrorCode::ExtractionFailed,
                format!("the model server's reply is not a chat completion: {e}"),
            )
        })
    }
}

/// The error text of a failed request: OpenAI's `{"error": {"message"}}`, Ollama's
/// `{"error": "..."}`, or the body itself, shortened.
fn server_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let text = parsed
        .as_ref()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("error"))
                .or_else(|| v.get("message"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let text = text.trim();
    if text.chars().count() > MAX_QUOTED_CHARS {
        let cut: String = text.chars().take(MAX_QUOTED_CHARS).collect();
        format!("{cut}...")
    } else if text.is_empty() {
        "(no message)".to_owned()
    } else {
        text.to_owned()
    }
}

#[derive(Debug, Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

impl Completion {
    /// The record the model answered with, or why there is none.
    fn record(self, max_tokens: u32) -> Result<Value> {
        let failed = |why: String| StageError::new(ErrorCode::ExtractionFailed, why);
        let choice = self
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| failed("the model server's reply has no choices".to_owned()))?;
        let message = choice.message.unwrap_or(Message {
            content: None,
            refusal: None,
        });
        if let Some(refusal) = message.refusal.filter(|r| !r.trim().is_empty()) {
            return Err(StageError::new(
                ErrorCode::ExtractionRefused,
                format!("the model refused: {}", server_message(refusal.as_bytes())),
            ));
        }
        match choice.finish_reason.as_deref() {
            Some("content_filter") => {
                return Err(StageError::new(
                    ErrorCode::ExtractionRefused,
                    "the model server's content filter stopped the reply",
                ));
            }
            Some("length") => {
                return Err(failed(format!(
                    "the model's reply was cut at llm_max_tokens ({max_tokens}); no partial \
                     result is kept"
                )));
            }
            _ => {}
        }
        let content = message
            .content
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| failed("the model's reply has no content".to_owned()))?;
        serde_json::from_str(content.trim())
            .map_err(|e| failed(format!("the model's reply is not JSON: {e}")))
    }
}

#[async_trait]
impl Extractor for ChatExtractor {
    async fn extract_invoice(
        &self,
        document: &Document,
        original: Option<&[u8]>,
    ) -> Result<InvoiceResult> {
        let mut unusable = None;
        if self.config.embedded_xml
            && let Some(bytes) = original
        {
            match read_before_printed_text(bytes).await {
                EmbeddedInvoice::Found(result) => return Ok(result),
                EmbeddedInvoice::Absent => {}
                EmbeddedInvoice::Unusable(check) => unusable = Some(check),
            }
        }
        let body = request_body(&self.config.model, self.config.max_tokens, document);
        let completion = self.complete(&body).await?;
        if let Some(u) = &completion.usage {
            tracing::info!(model = %self.config.model, prompt_tokens = u.prompt_tokens,
                completion_tokens = u.completion_tokens, "chat completion usage");
        }
        let record = completion.record(self.config.max_tokens)?;
        let mut result = invoice_record::parse(&record, Judgement::Caller, ResultSource::Llm)?;
        evidence::rate(&mut result, document);
        result.checks.extend(unusable);
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_url_is_read_as_openai_clients_read_it() {
        let url = |s: &str| completions_url(s).map(String::from);
        assert_eq!(
            url("http://127.0.0.1:11434/v1").as_deref(),
            Ok("http://127.0.0.1:11434/v1/chat/completions")
        );
        assert_eq!(
            url("http://localhost:8080/v1/").as_deref(),
            Ok("http://localhost:8080/v1/chat/completions")
        );
        assert_eq!(
            url("http://localhost:8000").as_deref(),
            Ok("http://localhost:8000/v1/chat/completions"),
            "a bare host gets /v1"
        );
        assert_eq!(
            url("https://example.com/openai/v1").as_deref(),
            Ok("https://example.com/openai/v1/chat/completions")
        );
        for bad in [
            "ftp://host/v1",
            "localhost:11434",
            "http://user:pw@host/v1",
            "http://host/v1?x=1",
        ] {
            assert!(completions_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_key_is_never_printed() {
        let config = ChatConfig {
            base_url: "http://127.0.0.1:1/v1".into(),
            model: "m".into(),
            api_key: Some(Secret::new("sk-very-secret")),
            timeout: Duration::from_secs(1),
            max_tokens: 10,
            embedded_xml: false,
        };
        assert!(!format!("{config:?}").contains("very-secret"));
    }

    #[test]
    fn server_messages_are_quoted_short() {
        assert_eq!(
            server_message(br#"{"error": {"message": "model 'x' not found"}}"#),
            "model 'x' not found"
        );
        assert_eq!(server_message(br#"{"error": "busy"}"#), "busy");
        assert_eq!(server_message(b""), "(no message)");
        assert!(server_message(&[b'a'; 5000]).len() < 400);
    }
}

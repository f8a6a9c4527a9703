//! The HTTP sink: `POST {base}/codex/analytics-events/events` with `{"events":[...]}`.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use flate2::write::GzEncoder;
use flate2::Compression;
use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, USER_AGENT,
};

use super::{EventSink, SinkResult};
use crate::delivery::envelope::{EventEnvelope, WireBatch};
use crate::delivery::stats::ErrorClass;

/// The ingest path appended to the base URL (Codex's, kept as the contract).
pub const INGEST_PATH: &str = "/codex/analytics-events/events";

/// Supplies the auth headers for each request (e.g. `authorization` and `chatgpt-account-id`);
/// called per attempt so refreshed tokens are picked up. An empty list sends no auth.
pub type AuthHeaderProvider = Arc<dyn Fn() -> Vec<(HeaderName, HeaderValue)> + Send + Sync>;

/// Told when the collector refused a request signed with an `AgentAssertion` (401): renews the
/// agent identity when the refusal says its runtime is gone. The sink then posts the batch once
/// more with fresh headers; a second refusal is an ordinary [`SinkResult::Auth`] (the batch is
/// kept), so a refusing collector never makes a loop.
#[async_trait]
pub trait AssertionRecovery: Send + Sync {
    /// `authorization` is the header the refused request carried and `refusal` the start of the
    /// answer's body (its reason code); true when the batch may be posted again at once. Must
    /// return within the sender's attempt deadline or be cancelled without harm.
    async fn recover(&self, authorization: &HeaderValue, refusal: &[u8]) -> bool;
}

/// Most of a refusal's body kept for its reason code.
const MAX_REFUSAL_BYTES: usize = 4 * 1024;

/// How to reach the collector.
#[derive(Clone, Debug)]
pub struct HttpSinkConfig {
    /// `chatgpt_base_url` or a Tally collector's URL; a trailing `/` is trimmed.
    pub base_url: String,
    /// The `originator` header (the client's `product_client_id`).
    pub originator: String,
    /// The `user-agent` header (the string `initialize` returns as `userAgent`).
    pub user_agent: String,
    /// Gzip request bodies; only for Tally's own collector (Codex's backend gets plain JSON).
    pub gzip: bool,
    /// Backstop deadline per request; the sender's `attempt_timeout` normally fires first.
    pub timeout: Duration,
}

impl HttpSinkConfig {
    /// A config with plain bodies and a 10 s request deadline.
    pub fn new(
        base_url: impl Into<String>,
        originator: impl Into<String>,
        user_agent: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            originator: originator.into(),
            user_agent: user_agent.into(),
            gzip: false,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why an [`HttpSink`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpSinkError {
    /// The base URL does not parse as an absolute http(s) URL.
    #[error("analytics base_url is not a valid http(s) URL")]
    InvalidUrl,
    /// `originator` or `user-agent` is not a valid header value.
    #[error("{0} is not a valid header value")]
    InvalidHeader(&'static str),
    /// The HTTP client could not be built (TLS setup).
    #[error("could not build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Posts batches to a collector over HTTP(S).
pub struct HttpSink {
    client: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
    gzip: bool,
    auth: AuthHeaderProvider,
    recovery: Option<Arc<dyn AssertionRecovery>>,
}

impl std::fmt::Debug for HttpSink {
    // Neither the URL's credentials nor any auth header belong in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSink")
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
    }
}

impl HttpSink {
    /// Builds the sink; `auth` is asked for headers on every attempt.
    pub fn new(config: HttpSinkConfig, auth: AuthHeaderProvider) -> Result<Self, HttpSinkError> {
        let url = ingest_url(&config.base_url)?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            HeaderName::from_static("originator"),
            HeaderValue::from_str(&config.originator)
                .map_err(|_| HttpSinkError::InvalidHeader("originator"))?,
        );
        headers.insert(
            USER_AGENT,
            HeaderValue::from_str(&config.user_agent)
                .map_err(|_| HttpSinkError::InvalidHeader("user-agent"))?,
        );
        if config.gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // A redirected POST turns into a GET and loses the body; treat 3xx as a failure instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            client,
            url,
            headers,
            gzip: config.gzip,
            auth,
            recovery: None,
        })
    }

    /// Asks `recovery` to renew a refused `AgentAssertion` and posts once more when it did.
    pub fn with_assertion_recovery(mut self, recovery: Arc<dyn AssertionRecovery>) -> Self {
        self.recovery = Some(recovery);
        self
    }

    /// An auth provider that sends no auth headers (a local collector without auth).
    pub fn no_auth() -> AuthHeaderProvider {
        Arc::new(Vec::new)
    }

    /// The full ingest URL this sink posts to.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    fn body(&self, batch: &[EventEnvelope]) -> Option<Vec<u8>> {
        let json = serde_json::to_vec(&WireBatch { events: batch }).ok()?;
        if !self.gzip {
            return Some(json);
        }
        let mut gz = GzEncoder::new(Vec::with_capacity(json.len() / 4), Compression::fast());
        gz.write_all(&json).ok()?;
        gz.finish().ok()
    }
}

/// A 401 to a request signed with an `AgentAssertion`: the header it carried and the start of
/// the answer (for its reason code).
struct Refusal {
    authorization: HeaderValue,
    body: Vec<u8>,
}

impl HttpSink {
    /// Posts `body` once with the current auth headers.
    async fn post(&self, body: bytes::Bytes) -> (SinkResult, Option<Refusal>) {
        let mut request = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .body(body);
        let mut assertion = None;
        for (name, mut value) in (self.auth)() {
            value.set_sensitive(true);
            if name == reqwest::header::AUTHORIZATION
                && value.as_bytes().starts_with(b"AgentAssertion ")
            {
                assertion = Some(value.clone());
            }
            request = request.header(name, value);
        }
        match request.send().await {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let result = classify_status(
                    status,
                    response.headers().get(RETRY_AFTER),
                    SystemTime::now(),
                );
                // Read a little of the body so the connection can be reused; only a refusal of
                // an assertion keeps its start (the reason code), and a 400 its counts; neither
                // is logged.
                let keep = if status == 401 && assertion.is_some() && self.recovery.is_some() {
                    MAX_REFUSAL_BYTES
                } else if status == 400 {
                    64 * 1024
                } else {
                    0
                };
                let mut kept = Vec::new();
                let mut seen = 0usize;
                while seen < 64 * 1024 {
                    match response.chunk().await {
                        Ok(Some(chunk)) => {
                            seen += chunk.len();
                            let room = keep.saturating_sub(kept.len());
                            kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                        }
                        _ => break,
                    }
                }
                let result = match (status, stored_of_partial_refusal(&kept)) {
                    (400, Some(stored)) => SinkResult::PartlyStored { status, stored },
                    _ => result,
                };
                let refusal = match (status == 401 && keep > 0, assertion) {
                    (true, Some(authorization)) => Some(Refusal {
                        authorization,
                        body: kept,
                    }),
                    _ => None,
                };
                (result, refusal)
            }
            Err(e) if e.is_timeout() => (
                SinkResult::Retryable {
                    retry_after: None,
                    class: ErrorClass::Timeout,
                },
                None,
            ),
            Err(_) => (
                SinkResult::Retryable {
                    retry_after: None,
                    class: ErrorClass::Network,
                },
                None,
            ),
        }
    }
}

#[async_trait]
impl EventSink for HttpSink {
    async fn send(&self, batch: &[EventEnvelope]) -> SinkResult {
        let Some(body) = self.body(batch) else {
            // Cannot happen for JSON values and string keys; refusing beats retrying forever.
            return SinkResult::Rejected(0);
        };
        let body = bytes::Bytes::from(body);
        let (result, refusal) = self.post(body.clone()).await;
        // A refused assertion whose identity was renewed: once more, at once. Whatever the
        // second answer is stands (a 401 keeps the batch for the sender's slow retries).
        if let (Some(refusal), Some(recovery)) = (refusal, &self.recovery) {
            if recovery
                .recover(&refusal.authorization, &refusal.body)
                .await
            {
                return self.post(body).await.0;
            }
        }
        result
    }
}

/// `{base}` without its trailing `/`, plus [`INGEST_PATH`].
pub(crate) fn ingest_url(base: &str) -> Result<reqwest::Url, HttpSinkError> {
    let url = reqwest::Url::parse(&format!("{}{INGEST_PATH}", base.trim_end_matches('/')))
        .map_err(|_| HttpSinkError::InvalidUrl)?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        _ => Err(HttpSinkError::InvalidUrl),
    }
}

/// Maps a response status to what the sender does (ANALYTICS-EVENTS.md 2.2, Tally's rule).
/// A Tally collector's answer to a batch with invalid events, `{"error": "invalid_events",
/// "accepted": N, "duplicates": M, …}`: the N + M events it stored (or already had).
fn stored_of_partial_refusal(body: &[u8]) -> Option<usize> {
    let answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    if answer.get("error")?.as_str()? != "invalid_events" {
        return None;
    }
    let count = |key: &str| answer.get(key).and_then(serde_json::Value::as_u64);
    let stored = count("accepted")?.saturating_add(count("duplicates").unwrap_or(0));
    usize::try_from(stored).ok()
}

pub(crate) fn classify_status(
    status: u16,
    retry_after: Option<&HeaderValue>,
    now: SystemTime,
) -> SinkResult {
    match status {
        200..=299 => SinkResult::Ok,
        401 | 403 => SinkResult::Auth(status),
        413 => SinkResult::TooLarge,
        408 | 429 | 500..=599 => SinkResult::Retryable {
            retry_after: retry_after.and_then(|v| parse_retry_after(v, now)),
            class: ErrorClass::Http { status },
        },
        400..=499 => SinkResult::Rejected(status),
        // 1xx/3xx: a misconfigured endpoint, not a verdict on the batch; keep it and retry.
        _ => SinkResult::Retryable {
            retry_after: None,
            class: ErrorClass::Http { status },
        },
    }
}

/// `Retry-After` as delta-seconds or an HTTP-date; a date in the past means "now".
pub(crate) fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;

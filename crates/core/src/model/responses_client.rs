//! The OpenAI Responses API over SSE (`POST {base_url}/responses`, `stream: true`).

use crate::config::{ModelProviderInfo, ProviderKind};
use crate::model::{
    ModelClient, ModelError, ModelRequest, ResponseEvent, ResponseItem, ResponseStream, SseEvent,
    SseParser,
};
use futures::StreamExt;
use serde_json::Value;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tally_auth::registration::read_limited;
use tally_protocol::types::TokenUsageBreakdown;

const MAX_SSE_EVENT_BYTES: usize = 16 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// The most of an error answer read (its message is all that is kept).
const MAX_ERROR_BODY: usize = 64 * 1024;
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// A Responses API client for one provider.
pub struct ResponsesClient {
    provider: ModelProviderInfo,
    http: reqwest::Client,
    auth: Option<std::sync::Arc<tally_auth::AuthManager>>,
}

/// The variable of the OpenAI login: providers naming it authenticate through `AuthManager`.
const OPENAI_KEY_VAR: &str = "OPENAI_API_KEY";

impl ResponsesClient {
    /// A client for `provider`, which must be a Responses provider.
    pub fn new(provider: ModelProviderInfo) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            provider,
            http,
            auth: None,
        }
    }

    /// Takes the authorization of OpenAI-login requests from `auth` (bearer or AgentAssertion).
    pub fn with_auth(mut self, auth: Option<std::sync::Arc<tally_auth::AuthManager>>) -> Self {
        self.auth = auth;
        self
    }

    /// The manager that authorizes this provider, when it uses the OpenAI login: only a
    /// provider that says so (`requires_openai_auth`) ever receives the login's credentials.
    fn login_auth(&self) -> Option<&std::sync::Arc<tally_auth::AuthManager>> {
        match &self.provider.kind {
            ProviderKind::Responses {
                requires_openai_auth: true,
                ..
            } => self.auth.as_ref(),
            _ => None,
        }
    }

    /// The auth headers of a request for `thread_id`: AuthManager's decision for OpenAI-login
    /// providers, else the provider's own key variable.
    async fn auth_headers(
        &self,
        env_key: Option<&str>,
        thread_id: &str,
    ) -> Result<Vec<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>, ModelError> {
        if let Some(auth) = self.login_auth() {
            if let Err(e) = auth.ensure_fresh().await {
                tracing::warn!(error = %e, "could not refresh credentials; using the current ones");
            }
            // A thread whose task is not registered under the current runtime (yet, or any
            // more after a new runtime) gets one first, within a deadline.
            let headers = auth.thread_request_headers(thread_id).await;
            if headers.is_empty() {
                return Err(ModelError::MissingCredentials(OPENAI_KEY_VAR.into()));
            }
            return Ok(headers);
        }
        let Some(var) = env_key else {
            return Ok(Vec::new());
        };
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => {
                let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {v}"))
                    .map_err(|_| ModelError::MissingCredentials(var.to_owned()))?;
                value.set_sensitive(true);
                Ok(vec![(reqwest::header::AUTHORIZATION, value)])
            }
            _ => Err(ModelError::MissingCredentials(var.to_owned())),
        }
    }

    fn endpoint(&self) -> Result<(String, Option<&str>), ModelError> {
        let ProviderKind::Responses {
            base_url, env_key, ..
        } = &self.provider.kind
        else {
            return Err(ModelError::Connect("provider has no base_url".into()));
        };
        Ok((format!("{base_url}/responses"), env_key.as_deref()))
    }

    async fn send_once(&self, request: &ModelRequest) -> Result<reqwest::Response, AttemptError> {
        let (url, env_key) = self.endpoint().map_err(AttemptError::fatal)?;
        let m = &request.metadata;
        let auth_headers = self
            .auth_headers(env_key, &m.thread_id)
            .await
            .map_err(AttemptError::fatal)?;
        let turn_metadata = serde_json::json!({
            "thread_id": m.thread_id, "turn_id": m.turn_id, "request_kind": m.request_kind.as_str(),
        })
        .to_string();
        let mut builder = self
            .http
            .post(url)
            .header("accept", "text/event-stream")
            .header("originator", &m.originator)
            .header("user-agent", &m.user_agent)
            .header("session-id", &m.thread_id)
            .header("thread-id", &m.thread_id)
            .header("x-client-request-id", &m.thread_id)
            .header("x-codex-window-id", format!("{}:{}", m.thread_id, m.window))
            .header("x-codex-turn-metadata", turn_metadata)
            .json(&request.to_body());
        if let Some(sub) = &m.subagent {
            builder = builder
                .header("x-openai-subagent", sub.kind)
                .header("x-codex-parent-thread-id", &sub.parent_thread_id);
        }
        // The AgentAssertion this request is signed with, to renew it if the backend refuses it.
        let assertion = auth_headers
            .iter()
            .find(|(name, value)| {
                *name == reqwest::header::AUTHORIZATION
                    && value.as_bytes().starts_with(b"AgentAssertion ")
            })
            .map(|(_, value)| value.clone());
        for (name, value) in auth_headers {
            builder = builder.header(name, value);
        }
        // The idle deadline covers the wait for the answer's headers too: a backend that takes
        // the request and never answers would otherwise hold the turn forever.
        let idle = self.provider.stream_idle_timeout;
        let response = tokio::time::timeout(idle, builder.send())
            .await
            .map_err(|_| AttemptError::retry(ModelError::IdleTimeout(idle), None))?
            .map_err(|e| AttemptError::retry(ModelError::Connect(e.to_string()), None))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = retry_after(&response);
        let retryable = status.as_u16() == 429 || status.is_server_error();
        let body = tokio::time::timeout(idle, read_limited(response, MAX_ERROR_BODY))
            .await
            .unwrap_or_default();
        let body = String::from_utf8_lossy(&body);
        let refused = match assertion {
            Some(authorization) if status.as_u16() == 401 => {
                tally_auth::registration::rejection_code(body.as_bytes()).map(|code| {
                    RefusedAssertion {
                        authorization,
                        code,
                    }
                })
            }
            _ => None,
        };
        let error = ModelError::Http {
            status: status.as_u16(),
            message: error_message(&body),
            retryable,
        };
        let mut attempt = if retryable {
            AttemptError::retry(error, retry_after)
        } else {
            AttemptError::fatal(error)
        };
        attempt.refused = refused;
        Err(attempt)
    }
}

/// A 401 to a request signed with an `AgentAssertion`, with the backend's reason code.
struct RefusedAssertion {
    authorization: reqwest::header::HeaderValue,
    code: String,
}

struct AttemptError {
    error: ModelError,
    retry: bool,
    retry_after: Option<Duration>,
    refused: Option<RefusedAssertion>,
}

impl AttemptError {
    fn fatal(error: ModelError) -> Self {
        Self {
            error,
            retry: false,
            retry_after: None,
            refused: None,
        }
    }
    fn retry(error: ModelError, retry_after: Option<Duration>) -> Self {
        Self {
            error,
            retry: true,
            retry_after,
            refused: None,
        }
    }
}

#[async_trait::async_trait]
impl ModelClient for ResponsesClient {
    async fn stream(&self, request: ModelRequest) -> Result<ResponseStream, ModelError> {
        self.stream_counting_retries(request, &AtomicU32::new(0))
            .await
    }

    async fn stream_counting_retries(
        &self,
        request: ModelRequest,
        retries: &AtomicU32,
    ) -> Result<ResponseStream, ModelError> {
        let mut attempt = 0u32;
        // One renewal per request, whichever credential was refused: never a loop.
        let mut renewed = false;
        loop {
            match self.send_once(&request).await {
                Ok(response) => {
                    return Ok(decode_stream(response, self.provider.stream_idle_timeout))
                }
                // A refused AgentAssertion with a reason code: the identity recovers (a new
                // runtime when the backend revoked or forgot it), then the request is sent again
                // with the new header; other refusals of an assertion end here.
                Err(AttemptError {
                    error,
                    refused: Some(refused),
                    ..
                }) if !renewed => {
                    let Some(auth) = self.login_auth() else {
                        return Err(error);
                    };
                    renewed = true;
                    if !auth
                        .recover_refused_assertion(&refused.authorization, &refused.code)
                        .await
                    {
                        tracing::warn!(code = %refused.code, "model request refused the agent assertion");
                        return Err(error);
                    }
                }
                // A refused ChatGPT token is refreshed once (single flight across callers), then
                // the request is sent again; an API key or a failed refresh ends here.
                Err(e) if matches!(e.error, ModelError::Http { status: 401, .. }) && !renewed => {
                    let Some(auth) = self.login_auth() else {
                        return Err(e.error);
                    };
                    renewed = true;
                    if let Err(refresh) = auth.refresh_after_unauthorized().await {
                        tracing::warn!(error = %refresh, "model request unauthorized; no refresh");
                        return Err(e.error);
                    }
                }
                Err(e) if e.retry && attempt < self.provider.request_max_retries => {
                    let wait = e
                        .retry_after
                        .unwrap_or_else(|| backoff(attempt))
                        .min(MAX_BACKOFF);
                    tracing::warn!(attempt, ?wait, error = %e.error, "model request failed; retrying");
                    retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.error),
            }
        }
    }

    fn stream_max_retries(&self) -> u32 {
        self.provider.stream_max_retries
    }
}

/// Exponential backoff with jitter: 200 ms, 400 ms, 800 ms, ... (±20%).
pub fn backoff(attempt: u32) -> Duration {
    let base = 200u64.saturating_mul(1u64 << attempt.min(10));
    let jitter = rand::random_range(0.8..1.2);
    Duration::from_millis((base as f64 * jitter) as u64)
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let v = response.headers().get("retry-after")?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn error_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let msg = parsed
        .as_ref()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(500).collect());
    if msg.is_empty() {
        "no details".into()
    } else {
        msg
    }
}

struct DecodeState {
    bytes: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    parser: SseParser,
    queue: std::collections::VecDeque<Result<ResponseEvent, ModelError>>,
    finished: bool,
    idle: Duration,
}

fn decode_stream(response: reqwest::Response, idle: Duration) -> ResponseStream {
    let state = DecodeState {
        bytes: response.bytes_stream().boxed(),
        parser: SseParser::new(MAX_SSE_EVENT_BYTES),
        queue: Default::default(),
        finished: false,
        idle,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.queue.pop_front() {
                if matches!(item, Err(_) | Ok(ResponseEvent::Completed { .. })) {
                    st.finished = true;
                    st.queue.clear();
                }
                return Some((item, st));
            }
            if st.finished {
                return None;
            }
            match tokio::time::timeout(st.idle, st.bytes.next()).await {
                Err(_) => st.queue.push_back(Err(ModelError::IdleTimeout(st.idle))),
                Ok(None) => st.queue.push_back(Err(ModelError::StreamDisconnected(
                    "stream closed before response.completed".into(),
                ))),
                Ok(Some(Err(e))) => st
                    .queue
                    .push_back(Err(ModelError::StreamDisconnected(e.to_string()))),
                Ok(Some(Ok(chunk))) => match st.parser.feed(&chunk) {
                    Err(e) => st
                        .queue
                        .push_back(Err(ModelError::ResponseFailed(e.to_string()))),
                    Ok(events) => st.queue.extend(events.iter().filter_map(decode_event)),
                },
            }
        }
    })
    .boxed()
}

/// Maps one SSE event to a response event; unknown types are skipped.
pub(crate) fn decode_event(ev: &SseEvent) -> Option<Result<ResponseEvent, ModelError>> {
    let data: Value = match serde_json::from_str(&ev.data) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(event = %ev.event, error = %e, "skipping SSE event with invalid JSON");
            return None;
        }
    };
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    // An item that does not decode (a type Tally does not know, or a call missing a field) is
    // skipped, and said: a tool call that vanished silently would look like the model's choice.
    // Only its type is logged; its fields may hold model output.
    let item = |v: &Value| {
        let decoded = serde_json::from_value::<ResponseItem>(v.clone()).ok();
        if decoded.is_none() {
            let item_type = v["type"].as_str().unwrap_or("(none)");
            tracing::warn!(event = %ev.event, item_type, "skipping an output item that does not decode");
        }
        decoded
    };
    let event = match ev.event.as_str() {
        "response.created" => ResponseEvent::Created,
        "response.output_item.added" => ResponseEvent::OutputItemAdded(item(&data["item"])?),
        "response.output_item.done" => ResponseEvent::OutputItemDone(item(&data["item"])?),
        "response.output_text.delta" => ResponseEvent::OutputTextDelta {
            item_id: s(&data["item_id"]),
            delta: s(&data["delta"]),
        },
        "response.reasoning_summary_part.added" => ResponseEvent::ReasoningSummaryPartAdded {
            item_id: s(&data["item_id"]),
            summary_index: data["summary_index"].as_i64().unwrap_or(0),
        },
        "response.reasoning_summary_text.delta" => ResponseEvent::ReasoningSummaryTextDelta {
            item_id: s(&data["item_id"]),
            summary_index: data["summary_index"].as_i64().unwrap_or(0),
            delta: s(&data["delta"]),
        },
        "response.reasoning_text.delta" => ResponseEvent::ReasoningTextDelta {
            item_id: s(&data["item_id"]),
            content_index: data["content_index"].as_i64().unwrap_or(0),
            delta: s(&data["delta"]),
        },
        "response.completed" => ResponseEvent::Completed {
            response_id: s(&data["response"]["id"]),
            usage: decode_usage(&data["response"]["usage"]),
        },
        "response.failed" | "error" => {
            let err = if data["response"]["error"].is_object() {
                &data["response"]["error"]
            } else {
                &data
            };
            let msg = err["message"]
                .as_str()
                .unwrap_or("response failed")
                .to_string();
            return Some(Err(ModelError::ResponseFailed(msg)));
        }
        "response.incomplete" => {
            let reason = s(&data["response"]["incomplete_details"]["reason"]);
            return Some(Err(ModelError::ResponseFailed(format!(
                "response incomplete: {reason}"
            ))));
        }
        _ => return None,
    };
    Some(Ok(event))
}

fn decode_usage(u: &Value) -> Option<TokenUsageBreakdown> {
    if !u.is_object() {
        return None;
    }
    let n = |v: &Value| v.as_i64().unwrap_or(0);
    Some(TokenUsageBreakdown {
        input_tokens: n(&u["input_tokens"]),
        cached_input_tokens: n(&u["input_tokens_details"]["cached_tokens"]),
        cache_write_input_tokens: 0,
        output_tokens: n(&u["output_tokens"]),
        reasoning_output_tokens: n(&u["output_tokens_details"]["reasoning_tokens"]),
        total_tokens: n(&u["total_tokens"]),
    })
}

#[cfg(test)]
#[path = "responses_client_tests.rs"]
mod tests;

//! The wire side of agent identity: `POST {base}/v1/agent/register` (bearer) and
//! `POST {base}/v1/agent/{agent_runtime_id}/task/register` (signed), with retries on 429/5xx,
//! bounded answers, and the reason code of a 401 read so that a revoked or unknown runtime can be
//! told from other refusals.

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use http::{HeaderName, HeaderValue};
use serde::Deserialize;
use std::time::{Duration, SystemTime};

use crate::agent_identity::AgentIdentityConfig;
use crate::agent_identity::{rfc3339_seconds, ssh_public_key, task_registration_message};
use crate::error::AuthError;
use crate::sealed_task_id::open_task_id;

/// Deadline on one registration request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Backoff between registration attempts on 429/5xx; its length bounds the attempts.
const RETRY_BACKOFF: [Duration; 3] = [
    Duration::from_millis(250),
    Duration::from_millis(1000),
    Duration::from_millis(3000),
];
/// Largest answer read from the backend.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// 401 reason codes meaning the runtime itself is gone at the backend: drop it, register anew.
pub const RUNTIME_GONE_CODES: [&str; 2] = ["agent_runtime_revoked", "agent_runtime_unknown"];

/// Whether a 401 reason code says the runtime is revoked or unknown.
pub fn is_runtime_gone(code: &str) -> bool {
    RUNTIME_GONE_CODES.contains(&code)
}

/// 401 reason code meaning the backend forgot (or revoked) the task the assertion named: drop
/// that task, register a new one of the same runtime.
pub const TASK_GONE_CODE: &str = "agent_task_unknown";

/// Whether a 401 reason code says the assertion's task is unknown.
pub fn is_task_gone(code: &str) -> bool {
    code == TASK_GONE_CODE
}

/// 401 reason codes meaning the assertion's timestamp is outside the backend's window (expired or
/// dated in the future): clock skew, not a bad identity; sign again, register nothing.
pub const CLOCK_SKEW_CODES: [&str; 2] = ["agent_assertion_expired", "agent_assertion_future_dated"];

/// Whether a 401 reason code says the assertion's timestamp was refused.
pub fn is_clock_skew(code: &str) -> bool {
    CLOCK_SKEW_CODES.contains(&code)
}

/// Why a registration call failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// 401 with a code of [`RUNTIME_GONE_CODES`].
    RuntimeGone {
        /// The reason code.
        code: String,
    },
    /// Anything else (network, other statuses, unreadable answers).
    Other(AuthError),
}

impl Failure {
    pub(crate) fn into_error(self) -> AuthError {
        match self {
            Failure::RuntimeGone { code } => {
                AuthError::AgentIdentity(format!("the backend refused the runtime ({code})"))
            }
            Failure::Other(e) => e,
        }
    }
}

impl From<AuthError> for Failure {
    fn from(e: AuthError) -> Self {
        Failure::Other(e)
    }
}

#[derive(Deserialize)]
struct RegisterResponse {
    agent_runtime_id: String,
}

/// Codex accepts both spellings; a plain id wins over an encrypted one.
#[derive(Deserialize)]
struct TaskRegisterResponse {
    #[serde(default, alias = "taskId")]
    task_id: Option<String>,
    #[serde(default, alias = "encryptedTaskId")]
    encrypted_task_id: Option<String>,
}

/// Makes the registration calls of one backend.
pub(crate) struct Registrar {
    http: reqwest::Client,
}

impl Registrar {
    pub(crate) fn new() -> Self {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { http }
    }

    /// Registers `key`'s public key with the login's bearer; returns the `agent_runtime_id`.
    pub(crate) async fn register_runtime(
        &self,
        config: &AgentIdentityConfig,
        bearer: &[(HeaderName, HeaderValue)],
        key: &SigningKey,
    ) -> Result<String, Failure> {
        if bearer.is_empty() {
            return Err(
                AuthError::AgentIdentity("registration needs a logged-in account".into()).into(),
            );
        }
        let body = serde_json::json!({
            "abom": {
                "agent_version": config.agent_version,
                "agent_harness_id": config.agent_harness_id,
                "running_location": config.running_location,
            },
            "agent_public_key": ssh_public_key(&key.verifying_key().to_bytes()),
            "capabilities": ["responsesapi"],
            "ttl": null,
        });
        let url = format!("{}/v1/agent/register", config.authapi_base_url);
        let response: RegisterResponse = self.post_with_retry(&url, bearer, &body).await?;
        if response.agent_runtime_id.trim().is_empty() {
            return Err(AuthError::AgentIdentity(
                "the backend sent an empty agent_runtime_id".into(),
            )
            .into());
        }
        Ok(response.agent_runtime_id)
    }

    /// Registers a task of `agent_runtime_id`, signed with `key` (no bearer); opens an
    /// `encrypted_task_id` with the same key.
    pub(crate) async fn register_task(
        &self,
        config: &AgentIdentityConfig,
        agent_runtime_id: &str,
        key: &SigningKey,
    ) -> Result<String, Failure> {
        let timestamp = rfc3339_seconds(SystemTime::now());
        let signature =
            key.sign(task_registration_message(agent_runtime_id, &timestamp).as_bytes());
        let body = serde_json::json!({
            "timestamp": timestamp,
            "signature": base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
        });
        let url = format!(
            "{}/v1/agent/{agent_runtime_id}/task/register",
            config.authapi_base_url
        );
        let response: TaskRegisterResponse = self.post_with_retry(&url, &[], &body).await?;
        let present = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        match (
            present(response.task_id),
            present(response.encrypted_task_id),
        ) {
            (Some(task), _) => Ok(task),
            (None, Some(sealed)) => Ok(open_task_id(key, &sealed)?),
            (None, None) => {
                Err(AuthError::AgentIdentity("the backend sent no task_id".into()).into())
            }
        }
    }

    async fn post_with_retry<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: &serde_json::Value,
    ) -> Result<T, Failure> {
        let mut attempt = 0;
        loop {
            let mut request = self.http.post(url).json(body);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let retry = match request.send().await {
                Ok(r) if r.status().is_success() => {
                    let bytes = read_limited(r, MAX_ANSWER_BYTES).await;
                    return serde_json::from_slice(&bytes).map_err(|_| {
                        AuthError::AgentIdentity(format!("{url} sent an unreadable answer")).into()
                    });
                }
                Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                    format!("{url} answered {}", r.status())
                }
                Ok(r) if r.status().as_u16() == 401 => {
                    let status = r.status();
                    let code = rejection_code(&read_limited(r, MAX_ANSWER_BYTES).await);
                    return Err(match code {
                        Some(code) if is_runtime_gone(&code) => Failure::RuntimeGone { code },
                        Some(code) => {
                            AuthError::AgentIdentity(format!("{url} answered {status} ({code})"))
                                .into()
                        }
                        None => AuthError::AgentIdentity(format!("{url} answered {status}")).into(),
                    });
                }
                Ok(r) => {
                    return Err(
                        AuthError::AgentIdentity(format!("{url} answered {}", r.status())).into(),
                    )
                }
                Err(e) => format!("{url} unreachable: {}", e.without_url()),
            };
            let Some(delay) = RETRY_BACKOFF.get(attempt) else {
                return Err(AuthError::AgentIdentity(retry).into());
            };
            attempt += 1;
            tokio::time::sleep(*delay).await;
        }
    }
}

/// The body of `response`, up to `max` bytes (the rest is not read; the caller bounds the
/// wait). Backend answers are read with it, so a peer cannot make the client hold an endless body.
pub async fn read_limited(mut response: reqwest::Response, max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = max.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= max {
            break;
        }
    }
    out
}

/// The reason code of a refusal: `{"error": "code"}` (Tally's collector), `{"error": {"code":
/// "code"}}` (OpenAI style) or `{"code": "code"}`; only a short `[a-z0-9_.-]` token is returned,
/// so nothing else of the body reaches a log.
pub fn rejection_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let code = match value.get("error") {
        Some(serde_json::Value::String(s)) => s.as_str(),
        Some(e) => e.get("code")?.as_str()?,
        None => value.get("code")?.as_str()?,
    };
    let valid = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    valid.then(|| code.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_are_read_from_the_usual_error_shapes() {
        assert_eq!(
            rejection_code(br#"{"error":"agent_runtime_revoked","message":"x"}"#).as_deref(),
            Some("agent_runtime_revoked")
        );
        assert_eq!(
            rejection_code(br#"{"error":{"code":"invalid_task_id","message":"x"}}"#).as_deref(),
            Some("invalid_task_id")
        );
        assert_eq!(
            rejection_code(br#"{"code":"agent_runtime_unknown"}"#).as_deref(),
            Some("agent_runtime_unknown")
        );
        assert_eq!(rejection_code(b"not json"), None);
        assert_eq!(
            rejection_code(br#"{"error":"has spaces and a token sk-123"}"#),
            None
        );
        assert!(
            is_runtime_gone("agent_runtime_revoked") && is_runtime_gone("agent_runtime_unknown")
        );
        assert!(!is_runtime_gone("agent_task_unknown"));
        assert!(is_task_gone("agent_task_unknown") && !is_task_gone("agent_runtime_unknown"));
        assert!(is_clock_skew("agent_assertion_expired"));
        assert!(is_clock_skew("agent_assertion_future_dated"));
        assert!(!is_clock_skew("agent_task_unknown") && !is_task_gone("agent_assertion_expired"));
    }
}

//! An agent's side of agent identity, for the tests: its key as `ssh-ed25519`, its signatures,
//! registration through a collector, and `AgentAssertion` headers.

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};
use std::time::SystemTime;

use super::{Running, TOKEN};

pub fn ssh_key(key: &SigningKey) -> String {
    tally_collector::agent_identity::format_ssh_ed25519(&key.verifying_key())
}

pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

pub fn sign(key: &SigningKey, message: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.sign(message.as_bytes()).to_bytes())
}

/// POSTs `body` to `path` of the collector, with `auth` as the `Authorization` header.
pub async fn post(r: &Running, path: &str, auth: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = r
        .http
        .post(format!("{}{path}", r.handle.base_url()))
        .json(&body);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Registers `key` as a runtime with the ingest token, as Codex does; its id.
pub async fn register_runtime(r: &Running, key: &SigningKey) -> String {
    let (status, body) = post(
        r,
        "/api/accounts/v1/agent/register",
        Some(&format!("Bearer {TOKEN}")),
        json!({"abom": {"agent_version": "0.169.0", "agent_harness_id": "codex-app",
            "running_location": "vscode-linux"}, "agent_public_key": ssh_key(key),
            "capabilities": ["responsesapi"], "ttl": null}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["agent_runtime_id"].as_str().unwrap().to_string()
}

/// Registers a task of `runtime`, signed with `key`; its id.
pub async fn register_task(r: &Running, key: &SigningKey, runtime: &str) -> String {
    let timestamp = now();
    let (status, body) = post(
        r,
        &format!("/api/accounts/v1/agent/{runtime}/task/register"),
        None,
        json!({"timestamp": timestamp, "signature": sign(key, &format!("{runtime}:{timestamp}"))}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["task_id"].as_str().unwrap().to_string()
}

/// An `Authorization` header carrying an `AgentAssertion` for `runtime` and `task`, signed now.
pub fn signed(key: &SigningKey, runtime: &str, task: &str) -> String {
    let timestamp = now();
    let json = json!({"agent_runtime_id": runtime, "signature":
        sign(key, &format!("{runtime}:{task}:{timestamp}")), "task_id": task, "timestamp": timestamp});
    format!(
        "AgentAssertion {}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
    )
}

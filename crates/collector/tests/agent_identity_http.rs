//! Agent identity over HTTP: registration needs a known bearer token, task registration needs the
//! runtime's signature, and ingestion verifies `AgentAssertion` (401 with a reason code, never 500).

mod common;

use base64::Engine;
use common::agent::*;
use common::*;
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};

fn batch() -> Value {
    json!({"events": [{"event_type": "codex_thread_initialized", "event_params": {
        "thread_id": "t1", "product_client_id": "tests", "model": "m", "ephemeral": false,
        "initialization_mode": "new", "created_at": 1}}]})
}

#[tokio::test]
async fn registration_tasks_and_signed_ingest_under_a_configured_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.agent_identity.prefix = "/authapi/api/accounts".into();
    let r = start_with(config, dir).await;
    let key = SigningKey::from_bytes(&[5u8; 32]);
    let register = json!({"abom": {"agent_version": "0.169.0", "agent_harness_id": "codex-app",
        "running_location": "vscode-linux"}, "agent_public_key": ssh_key(&key),
        "capabilities": ["responsesapi"], "ttl": null});

    let (status, body) = post(
        &r,
        "/authapi/api/accounts/v1/agent/register",
        None,
        register.clone(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("missing_credentials"))
    );
    let (status, body) = post(
        &r,
        "/authapi/api/accounts/v1/agent/register",
        Some("Bearer wrong"),
        register.clone(),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unknown_token"))
    );
    let (status, body) = post(
        &r,
        "/authapi/api/accounts/v1/agent/register",
        Some(&format!("Bearer {TOKEN}")),
        json!({"agent_public_key": "ssh-rsa AAAA"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    let (status, body) = post(
        &r,
        "/authapi/api/accounts/v1/agent/register",
        Some(&format!("Bearer {TOKEN}")),
        register,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let runtime = body["agent_runtime_id"].as_str().unwrap().to_string();

    let timestamp = now();
    let task_path = format!("/authapi/api/accounts/v1/agent/{runtime}/task/register");
    let wrong = SigningKey::from_bytes(&[6u8; 32]);
    let (status, body) = post(
        &r,
        &task_path,
        None,
        json!({"timestamp": timestamp,
        "signature": sign(&wrong, &format!("{runtime}:{timestamp}"))}),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("agent_assertion_bad_signature"))
    );
    let (status, body) = post(
        &r,
        &task_path,
        None,
        json!({"timestamp": timestamp,
        "signature": sign(&key, &format!("{runtime}:{timestamp}"))}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let task = body["task_id"].as_str().unwrap().to_string();

    let assertion = |task: &str| {
        let timestamp = now();
        let json = json!({"agent_runtime_id": runtime, "signature":
            sign(&key, &format!("{runtime}:{task}:{timestamp}")), "task_id": task, "timestamp": timestamp});
        format!(
            "AgentAssertion {}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
        )
    };
    let signed = assertion(&task);
    let (status, body) = post(&r, INGEST, Some(&signed), batch()).await;
    assert_eq!(status, 200, "{body}");
    // The same header again (Codex sends byte-identical headers within a second): accepted.
    let (status, body) = post(&r, INGEST, Some(&signed), batch()).await;
    assert_eq!(status, 200, "{body}");

    for (credential, code) in [
        (
            "AgentAssertion %%%".to_string(),
            "agent_assertion_bad_base64",
        ),
        (assertion("task_unknown"), "agent_task_unknown"),
    ] {
        let (status, body) = post(&r, INGEST, Some(&credential), batch()).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some(code)),
            "{body}"
        );
    }

    assert_eq!(
        r.handle.identities().unwrap().revoke(&runtime).await,
        Ok(true)
    );
    let (status, body) = post(&r, INGEST, Some(&assertion(&task)), batch()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("agent_runtime_revoked"))
    );

    let metrics = r
        .http
        .get(format!("{}/metrics", r.handle.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tally_collector_agent_assertion_repeats_total 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains(
        "tally_collector_agent_assertions_rejected_total{reason=\"agent_runtime_revoked\"} 1"
    ));
    r.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn encrypted_task_ids_open_with_the_runtime_key_and_sign_accepted_requests() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.agent_identity.encrypt_task_ids = true;
    let r = start_with(config, dir).await;
    let key = SigningKey::from_bytes(&[11u8; 32]);
    let runtime = register_runtime(&r, &key).await;
    let timestamp = now();
    let (status, body) = post(
        &r,
        &format!("/api/accounts/v1/agent/{runtime}/task/register"),
        None,
        json!({"timestamp": timestamp, "signature": sign(&key, &format!("{runtime}:{timestamp}"))}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("task_id").is_none(), "{body}");
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(body["encrypted_task_id"].as_str().unwrap())
        .unwrap();
    let task = crypto_box::SecretKey::from(key.to_scalar_bytes())
        .unseal(&sealed)
        .map(|t| String::from_utf8(t).unwrap())
        .expect("opens with the runtime's X25519 key");
    assert!(task.starts_with("task_"), "{task}");
    let (status, body) = post(&r, INGEST, Some(&signed(&key, &runtime, &task)), batch()).await;
    assert_eq!(status, 200, "{body}");
    r.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_runtime_over_its_rate_limit_gets_429_with_retry_after_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.agent_identity.max_requests_per_minute = 3;
    let r = start_with(config, dir).await;
    let key = SigningKey::from_bytes(&[12u8; 32]);
    let runtime = register_runtime(&r, &key).await;
    let timestamp = now();
    let (status, body) = post(
        &r,
        &format!("/api/accounts/v1/agent/{runtime}/task/register"),
        None,
        json!({"timestamp": timestamp, "signature": sign(&key, &format!("{runtime}:{timestamp}"))}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let task = body["task_id"].as_str().unwrap().to_string();
    let header = signed(&key, &runtime, &task);
    // The registration spent one token of three.
    for _ in 0..2 {
        let (status, body) = post(&r, INGEST, Some(&header), batch()).await;
        assert_eq!(status, 200, "{body}");
    }
    let response = r
        .http
        .post(r.url(INGEST))
        .header("authorization", &header)
        .json(&batch())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("20")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "agent_runtime_rate_limited");
    // Another runtime has its own budget.
    let other = SigningKey::from_bytes(&[13u8; 32]);
    let other_runtime = register_runtime(&r, &other).await;
    let timestamp = now();
    let (status, _) = post(
        &r,
        &format!("/api/accounts/v1/agent/{other_runtime}/task/register"),
        None,
        json!({"timestamp": timestamp, "signature": sign(&other, &format!("{other_runtime}:{timestamp}"))}),
    )
    .await;
    assert_eq!(status, 200);

    let metrics = r.get_text("/metrics").await;
    assert!(metrics.contains(
        "tally_collector_agent_assertions_rejected_total{reason=\"agent_runtime_rate_limited\"} 1\n"
    ), "{metrics}");
    assert!(
        metrics
            .contains("tally_collector_requests_refused_total{reason=\"agent_rate_limited\"} 1\n"),
        "{metrics}"
    );
    r.handle.shutdown().await.unwrap();
}

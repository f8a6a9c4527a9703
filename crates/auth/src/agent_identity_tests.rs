use super::*;
use ed25519_dalek::{Signature, Verifier};

/// An identity kept under `home` whose backend is `authapi_base_url` on 127.0.0.1.
fn identity_at(home: &std::path::Path, authapi_base_url: impl Into<String>) -> AgentIdentity {
    AgentIdentity::new(
        home,
        AgentIdentityConfig {
            authapi_base_url: authapi_base_url.into(),
            agent_version: "0.1.0".into(),
            agent_harness_id: "tally".into(),
            running_location: "test".into(),
            allowed_hosts: vec!["127.0.0.1".into()],
        },
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn home() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

#[test]
fn assertion_has_codex_shape_and_verifies() {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let now = std::time::UNIX_EPOCH + Duration::from_secs(1_795_990_810);
    let header = mint_assertion(&key, "rt-1", "task-1", now);
    assert!(!header.contains('=') && !header.contains('+') && !header.contains('/'));
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&header)
        .unwrap_or_default();
    let text = String::from_utf8(json).unwrap_or_default();
    let keys: Vec<&str> = ["agent_runtime_id", "signature", "task_id", "timestamp"]
        .into_iter()
        .filter(|k| text.contains(&format!("\"{k}\"")))
        .collect();
    assert_eq!(keys.len(), 4, "{text}");
    assert!(
        text.starts_with("{\"agent_runtime_id\":\"rt-1\",\"signature\":\""),
        "{text}"
    );
    let parsed: AgentAssertion = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.timestamp, "2026-11-29T22:20:10Z");
    assert_eq!(parsed.signature.len(), 88);
    let sig_bytes = base64::engine::general_purpose::STANDARD
        .decode(&parsed.signature)
        .unwrap_or_default();
    let sig = Signature::from_slice(&sig_bytes).unwrap_or_else(|e| panic!("{e}"));
    let message = assertion_message("rt-1", "task-1", &parsed.timestamp);
    assert!(key.verifying_key().verify(message.as_bytes(), &sig).is_ok());
    // Deterministic: the same second gives the same header, as real Codex does.
    assert_eq!(header, mint_assertion(&key, "rt-1", "task-1", now));
}

#[test]
fn ssh_public_key_is_openssh_format() {
    let key = SigningKey::from_bytes(&[1u8; 32]);
    let text = ssh_public_key(&key.verifying_key().to_bytes());
    assert!(
        text.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"),
        "{text}"
    );
    assert_eq!(text.len(), "ssh-ed25519 ".len() + 68);
}

#[cfg(unix)]
#[test]
fn key_is_stored_pkcs8_owner_only_and_reloaded() {
    use std::os::unix::fs::PermissionsExt;
    let home = home();
    let first = load_or_create_key(home.path()).unwrap_or_else(|e| panic!("{e}"));
    let mode = std::fs::metadata(home.path().join(KEY_FILE))
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    assert_eq!(mode, 0o600);
    let second = load_or_create_key(home.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.to_bytes(), second.to_bytes());
}

#[test]
fn corrupt_key_file_is_an_error() {
    let home = home();
    std::fs::write(home.path().join(KEY_FILE), b"not a key").unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        load_or_create_key(home.path()),
        Err(AuthError::Corrupt { .. })
    ));
}

#[test]
fn unregistered_identity_mints_nothing() {
    let home = home();
    let identity = identity_at(home.path(), "http://127.0.0.1:9/api/accounts");
    assert_eq!(identity.assertion(None), None);
    assert_eq!(identity.assertion(Some("thread")), None);
    assert!(!format!("{identity:?}").contains("key:"));
}

#[test]
fn only_prewarmed_threads_want_a_task_and_a_failure_cools_down() {
    let home = home();
    let identity = identity_at(home.path(), "http://127.0.0.1:9/api/accounts");
    assert!(!identity.wants_thread_task("thread-1"), "never prewarmed");
    identity.thread_lock("thread-1");
    assert!(identity.wants_thread_task("thread-1"));
    identity.note_thread_task("thread-1", false);
    assert!(
        !identity.wants_thread_task("thread-1"),
        "no retry per request within the cooldown"
    );
    identity.note_thread_task("thread-1", true);
    assert!(identity.wants_thread_task("thread-1"));
}

#[test]
fn assertion_headers_decode_and_others_do_not() {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let credential = mint_assertion(&key, "rt-1", "task-1", SystemTime::now());
    let value = HeaderValue::from_str(&format!("AgentAssertion {credential}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let decoded = AgentAssertion::from_header(&value).unwrap_or_else(|| panic!("decodes"));
    assert_eq!(
        (decoded.agent_runtime_id.as_str(), decoded.task_id.as_str()),
        ("rt-1", "task-1")
    );
    for other in ["Bearer sk-1", "AgentAssertion !!!", "AgentAssertion e30"] {
        assert!(AgentAssertion::from_header(&HeaderValue::from_static(other)).is_none());
    }
}

fn bearer_of_account(account: &str) -> Vec<(HeaderName, HeaderValue)> {
    vec![
        (
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer token-of-the-login"),
        ),
        (
            HeaderName::from_static(crate::ACCOUNT_ID_HEADER),
            HeaderValue::from_str(account).unwrap_or_else(|e| panic!("{e}")),
        ),
    ]
}

#[tokio::test]
async fn a_bearer_of_another_login_than_the_current_one_registers_nothing() {
    use std::sync::atomic::AtomicUsize;
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = axum::Router::new()
        .route(
            "/api/accounts/v1/agent/register",
            axum::routing::post(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { axum::Json(serde_json::json!({"agent_runtime_id": "rt_1"})) }
            }),
        )
        .route(
            "/api/accounts/v1/agent/rt_1/task/register",
            axum::routing::post(|| async { axum::Json(serde_json::json!({"task_id": "task_1"})) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let home = home();
    let identity = identity_at(home.path(), format!("http://{addr}/api/accounts"));
    // Account B logged in after account A's bearer was taken.
    identity.set_principal(Some("chatgpt:acct-b".into()));
    identity.prepare(&bearer_of_account("acct-a")).await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "nothing registered with A's bearer"
    );
    assert_eq!(identity.runtime_id(), None);
    identity.prepare(&bearer_of_account("acct-b")).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(identity.runtime_id().as_deref(), Some("rt_1"));
    let stored = crate::auth_json::read(home.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .and_then(|f| f.agent_identity);
    assert_eq!(
        stored.and_then(|r| r.principal).as_deref(),
        Some("chatgpt:acct-b")
    );
}

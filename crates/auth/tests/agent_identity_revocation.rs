//! A revoked runtime is dropped, its key replaced and a new runtime registered, once; a second
//! revocation right after leaves requests on bearer. The logs of the whole run hold no secret.
//! (Alone in its binary: it installs the global log subscriber.)

mod common;

use base64::Engine;
use common::*;
use serde_json::Value;

#[tokio::test]
async fn a_revoked_runtime_is_dropped_and_registered_again_once_with_a_new_key() {
    let logs = Logs::global();

    let dir = tempdir();
    let collector = collector(dir.path(), true).await;
    let registry = collector
        .identities()
        .cloned()
        .unwrap_or_else(|| panic!("registry"));
    let home = tempdir();
    let m = manager(home.path(), &collector);
    m.prepare_agent_identity().await;
    let identity = m.agent_identity().unwrap_or_else(|| panic!("identity"));
    let first = identity.runtime_id().unwrap_or_default();
    let first_key = identity.public_key();
    let mut seen_headers = vec![authorization(&m.default_headers())];

    // Revoked at the collector: the next task registration is refused with
    // agent_runtime_revoked; the runtime and its key are dropped and a new one registered.
    assert_eq!(registry.revoke(&first).await, Ok(true));
    assert_eq!(
        ingest(&collector, m.default_headers()).await,
        (401, "agent_runtime_revoked".into())
    );
    m.prewarm_thread_task("thread-2").await;
    let second = identity.runtime_id().unwrap_or_default();
    assert!(!second.is_empty() && second != first, "{first} -> {second}");
    assert_ne!(
        identity.public_key(),
        first_key,
        "the key is replaced after a revocation"
    );
    assert!(identity.thread_task("thread-2").is_some());
    assert_eq!(
        ingest(&collector, m.thread_headers("thread-2")).await.0,
        200
    );
    assert_eq!(ingest(&collector, m.default_headers()).await.0, 200);
    seen_headers.push(authorization(&m.thread_headers("thread-2")));

    // Revoked again at once: dropped, but not registered again within the cooldown; bearer.
    assert_eq!(registry.revoke(&second).await, Ok(true));
    m.prewarm_thread_task("thread-3").await;
    m.prewarm_thread_task("thread-4").await;
    assert_eq!(identity.runtime_id(), None);
    assert_eq!(
        authorization(&m.default_headers()),
        format!("Bearer {TEAM_TOKEN}")
    );
    assert_eq!(registry.list().len(), 2, "no third registration");
    assert!(registry.list().iter().all(|r| r.revoked));

    // No secret reached the logs: bearer token, assertion headers, signatures, private key.
    let text = logs.text();
    assert!(text.contains("registering a new one"), "{text}");
    assert!(!text.contains(TEAM_TOKEN), "{text}");
    for header in seen_headers.iter().filter(|h| !h.is_empty()) {
        let b64 = header.trim_start_matches("AgentAssertion ");
        assert!(!text.contains(b64), "{text}");
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .unwrap_or_default();
        let signature = serde_json::from_slice::<Value>(&json).unwrap_or_default()["signature"]
            .as_str()
            .unwrap_or("never")
            .to_owned();
        assert!(!text.contains(&signature), "{text}");
    }
    let der =
        std::fs::read(home.path().join(tally_auth::agent_identity::KEY_FILE)).unwrap_or_default();
    assert!(!text.contains(&base64::engine::general_purpose::STANDARD.encode(&der)));
    collector.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
}

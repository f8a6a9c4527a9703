//! A backend host that is neither production/staging ChatGPT nor in `allowed_hosts`: nothing is
//! registered, every request stays on bearer, and the log says so exactly once. (Alone in its
//! binary: it installs the global log subscriber.)

mod common;

use common::*;
use tally_auth::{AgentIdentityConfig, AuthConfig, AuthManager};

#[tokio::test]
async fn an_unsupported_host_stays_on_bearer_and_says_so_once() {
    let logs = Logs::global();

    let dir = tempdir();
    let collector = collector(dir.path(), false).await;
    let home = tempdir();
    let m = AuthManager::load(AuthConfig {
        home: home.path().to_path_buf(),
        env_api_key: Some(TEAM_TOKEN.into()),
        agent_identity: Some(AgentIdentityConfig {
            authapi_base_url: format!("{}/api/accounts", collector.base_url()),
            agent_version: "0.1.0".into(),
            agent_harness_id: "tally".into(),
            running_location: "test".into(),
            // 127.0.0.1 is not listed: Codex, too, refuses a loopback backend by default.
            allowed_hosts: vec!["collector.example.com".into()],
        }),
    })
    .unwrap_or_else(|e| panic!("load: {e}"));
    m.prepare_agent_identity().await;
    m.prewarm_thread_task("thread-1").await;
    let bearer = format!("Bearer {TEAM_TOKEN}");
    for _ in 0..3 {
        assert_eq!(authorization(&m.default_headers()), bearer);
        assert_eq!(authorization(&m.thread_headers("thread-1")), bearer);
    }
    assert!(!m.agent_assertion_refused("agent_runtime_revoked").await);
    let identity = m.agent_identity().unwrap_or_else(|| panic!("identity"));
    assert!(!identity.is_supported());
    assert_eq!(identity.runtime_id(), None);
    assert_eq!(
        collector.identities().map(|r| r.list().len()),
        Some(0),
        "nothing registered"
    );
    assert_eq!(ingest(&collector, m.default_headers()).await.0, 200);

    let text = logs.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("tally_auth") && l.contains("bearer"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains("host=\"127.0.0.1\""), "{}", lines[0]);
    assert!(lines[0].contains("allowed_hosts"), "{}", lines[0]);
    collector.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
}

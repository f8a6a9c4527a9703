//! An agent identity signs for the login it was registered under and no other: a logout or
//! another account's login puts requests back on bearer until the new login registers its own.

mod common;

use common::*;

fn runtimes_of(collector: &tally_collector::CollectorHandle) -> Vec<(String, String)> {
    collector
        .identities()
        .map(|r| r.list())
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r.agent_runtime_id, r.account))
        .collect()
}

#[tokio::test]
async fn another_login_never_signs_with_the_previous_logins_identity() {
    let dir = tempdir();
    let collector = collector(dir.path(), false).await;
    let home = tempdir();
    let m = manager(home.path(), &collector);
    m.prepare_agent_identity().await;
    let identity = m.agent_identity().unwrap_or_else(|| panic!("identity"));
    let team_a_runtime = identity.runtime_id().unwrap_or_default();
    assert!(authorization(&m.default_headers()).starts_with("AgentAssertion "));

    // Another account logs in: its requests must not carry team A's signature.
    m.login_api_key(OTHER_TEAM_TOKEN)
        .unwrap_or_else(|e| panic!("login: {e}"));
    assert_eq!(
        authorization(&m.default_headers()),
        format!("Bearer {OTHER_TEAM_TOKEN}")
    );
    assert_eq!(identity.runtime_id(), None);
    assert_eq!(identity.thread_task("thread-1"), None);

    // Its own registration is under its own account, and signs from then on.
    m.prepare_agent_identity().await;
    let team_b_runtime = identity.runtime_id().unwrap_or_default();
    assert_ne!(team_b_runtime, team_a_runtime);
    let runtimes = runtimes_of(&collector);
    assert!(runtimes.contains(&(team_a_runtime.clone(), "team-a".to_owned())));
    assert!(runtimes.contains(&(team_b_runtime.clone(), "team-b".to_owned())));
    assert!(authorization(&m.default_headers()).starts_with("AgentAssertion "));
    assert_eq!(ingest(&collector, m.default_headers()).await.0, 200);

    // Logging out leaves the environment's key (team A): team B's identity stops signing, and a
    // restart does not bring it back.
    assert!(m.logout().unwrap_or_else(|e| panic!("logout: {e}")));
    assert_eq!(
        authorization(&m.default_headers()),
        format!("Bearer {TEAM_TOKEN}")
    );
    let restarted = manager(home.path(), &collector);
    assert_eq!(
        authorization(&restarted.default_headers()),
        format!("Bearer {TEAM_TOKEN}")
    );
    collector.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_registration_that_names_no_login_is_registered_again() {
    let dir = tempdir();
    let collector = collector(dir.path(), false).await;
    let home = tempdir();
    let m = manager(home.path(), &collector);
    m.prepare_agent_identity().await;
    let first = m
        .agent_identity()
        .and_then(|i| i.runtime_id())
        .unwrap_or_default();
    // As written before registrations named their login.
    let path = home.path().join("auth.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read: {e}"));
    let mut file: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse: {e}"));
    let removed = file["agent_identity"]
        .as_object_mut()
        .and_then(|o| o.remove("principal"));
    assert!(
        removed.is_some(),
        "the registration names its login: {text}"
    );
    std::fs::write(&path, file.to_string()).unwrap_or_else(|e| panic!("write: {e}"));

    let restarted = manager(home.path(), &collector);
    assert_eq!(
        authorization(&restarted.default_headers()),
        format!("Bearer {TEAM_TOKEN}")
    );
    restarted.prepare_agent_identity().await;
    let second = restarted
        .agent_identity()
        .and_then(|i| i.runtime_id())
        .unwrap_or_default();
    assert_ne!(second, first);
    assert!(authorization(&restarted.default_headers()).starts_with("AgentAssertion "));
    collector.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
}

//! Against a real Tally collector: a task the collector forgot is replaced (a thread's, persisted
//! by its store, or the background one) and the request retried once, a second refusal right after
//! falls back to bearer instead of looping; a refused timestamp (clock skew) is signed again
//! without registering anything, logged once and without secrets.

mod common;

use common::*;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tally_auth::ThreadTaskStore;

fn authorization_value(headers: &[(http::HeaderName, http::HeaderValue)]) -> http::HeaderValue {
    headers
        .iter()
        .find(|(n, _)| n == http::header::AUTHORIZATION)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("an authorization header"))
}

fn assert_no_secrets(text: &str, headers: &[String]) {
    assert!(!text.contains(TEAM_TOKEN), "{text}");
    for header in headers {
        let credential = header.trim_start_matches("AgentAssertion ");
        assert!(!text.contains(credential), "{text}");
        let assertion = tally_auth::AgentAssertion::from_header(
            &http::HeaderValue::from_str(header).unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_else(|| panic!("an assertion"));
        assert!(!text.contains(&assertion.signature), "{text}");
    }
}

#[tokio::test]
async fn a_forgotten_thread_task_is_replaced_and_persisted_and_a_second_refusal_uses_bearer() {
    let logs = Logs::global();
    let dir = tempdir();
    let collector = collector(dir.path(), false).await;
    let registry = collector
        .identities()
        .cloned()
        .unwrap_or_else(|| panic!("registry"));
    let home = tempdir();
    let store = Arc::new(MemoryStore::default());
    let m = manager(home.path(), &collector);
    m.set_thread_task_store(store.clone());
    m.prepare_agent_identity().await;
    m.prewarm_thread_task("thread-1").await;
    let identity = m.agent_identity().unwrap_or_else(|| panic!("identity"));
    let runtime = identity.runtime_id().unwrap_or_default();
    let background = task_of(&m.default_headers());
    let old = identity.thread_task("thread-1").unwrap_or_default();
    assert!(!old.is_empty());

    // The collector forgets the thread's task: the request is refused, the task replaced.
    assert_eq!(registry.forget_task(&runtime, &old).await, Ok(true));
    let refused = m.thread_headers("thread-1");
    let (status, code) = ingest(&collector, refused.clone()).await;
    assert_eq!((status, code.as_str()), (401, "agent_task_unknown"));
    assert!(
        m.recover_refused_assertion(&authorization_value(&refused), &code)
            .await
    );
    let new = identity.thread_task("thread-1").unwrap_or_default();
    assert!(new.starts_with("task_") && new != old, "{old} -> {new}");
    assert_eq!(identity.runtime_id().as_deref(), Some(runtime.as_str()));
    assert_eq!(task_of(&m.default_headers()), background, "background kept");
    assert_eq!(
        store.load(&runtime, "thread-1"),
        Some(new.clone()),
        "persisted"
    );
    let retried = m.thread_headers("thread-1");
    assert_eq!(task_of(&retried), new);
    assert_eq!(ingest(&collector, retried.clone()).await.0, 200);
    // The same refusal reported again (a request that was in flight): nothing more happens.
    assert!(
        m.recover_refused_assertion(&authorization_value(&refused), &code)
            .await
    );
    assert_eq!(identity.thread_task("thread-1"), Some(new.clone()));
    assert_eq!(
        registry.list()[0].tasks,
        2,
        "background and the new thread-1 task"
    );

    // Forgotten again right away: nothing is registered, the retry goes out with bearer.
    assert_eq!(registry.forget_task(&runtime, &new).await, Ok(true));
    let refused_again = m.thread_headers("thread-1");
    let (status, code) = ingest(&collector, refused_again.clone()).await;
    assert_eq!((status, code.as_str()), (401, "agent_task_unknown"));
    assert!(
        m.recover_refused_assertion(&authorization_value(&refused_again), &code)
            .await
    );
    assert_eq!(registry.list()[0].tasks, 1, "no task registered");
    assert_eq!(identity.runtime_id().as_deref(), Some(runtime.as_str()));
    let bearer = m.thread_headers("thread-1");
    assert_eq!(authorization(&bearer), format!("Bearer {TEAM_TOKEN}"));
    assert_eq!(ingest(&collector, bearer).await.0, 200);
    assert_eq!(
        authorization(&m.default_headers()),
        format!("Bearer {TEAM_TOKEN}")
    );
    assert_eq!(registry.list().len(), 1, "never a new runtime");

    let text = logs.text();
    let line = |needle: &str| {
        text.lines()
            .any(|l| l.contains(needle) && l.contains(&runtime))
    };
    assert!(line("agent task unknown to the backend"), "{text}");
    assert!(line("refused again soon"), "{text}");
    let headers = [&refused, &retried, &refused_again].map(|h| authorization(h));
    assert_no_secrets(&text, &headers);
    collector.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_forgotten_background_task_is_replaced_in_auth_json() {
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
    let runtime = identity.runtime_id().unwrap_or_default();
    let refused = m.default_headers();
    let old = task_of(&refused);

    assert_eq!(registry.forget_task(&runtime, &old).await, Ok(true));
    let (status, code) = ingest(&collector, refused.clone()).await;
    assert_eq!((status, code.as_str()), (401, "agent_task_unknown"));
    assert!(
        m.recover_refused_assertion(&authorization_value(&refused), &code)
            .await
    );
    let headers = m.default_headers();
    let new = task_of(&headers);
    assert!(new.starts_with("task_") && new != old, "{old} -> {new}");
    assert_eq!(identity.runtime_id().as_deref(), Some(runtime.as_str()));
    let stored = tally_auth::auth_json::read(home.path())
        .ok()
        .flatten()
        .and_then(|f| f.agent_identity)
        .and_then(|r| r.background_task_id);
    assert_eq!(stored.as_deref(), Some(new.as_str()), "persisted");
    assert_eq!(ingest(&collector, headers.clone()).await.0, 200);
    assert_no_secrets(
        &logs.text(),
        &[authorization(&refused), authorization(&headers)],
    );
    collector.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_refused_timestamp_is_signed_again_without_registering() {
    let logs = Logs::global();
    let dir = tempdir();
    let collector = collector(dir.path(), false).await;
    let registry = collector
        .identities()
        .cloned()
        .unwrap_or_else(|| panic!("registry"));
    let home = tempdir();
    let m = manager(home.path(), &collector);
    m.prepare_agent_identity().await;
    let identity = m.agent_identity().unwrap_or_else(|| panic!("identity"));
    let runtime = identity.runtime_id().unwrap_or_default();
    let task = task_of(&m.default_headers());
    let key = tally_auth::agent_identity::load_or_create_key(home.path())
        .unwrap_or_else(|e| panic!("key: {e}"));
    let hour = Duration::from_secs(3600);
    let mut seen = Vec::new();
    for (at, expected) in [
        (SystemTime::now() - hour, "agent_assertion_expired"),
        (SystemTime::now() + hour, "agent_assertion_future_dated"),
    ] {
        let header = format!(
            "AgentAssertion {}",
            tally_auth::agent_identity::mint_assertion(&key, &runtime, &task, at)
        );
        let value = http::HeaderValue::from_str(&header).unwrap_or_else(|e| panic!("{e}"));
        let (status, code) = ingest(
            &collector,
            vec![(http::header::AUTHORIZATION, value.clone())],
        )
        .await;
        assert_eq!((status, code.as_str()), (401, expected));
        assert!(m.recover_refused_assertion(&value, &code).await);
        assert_eq!(identity.runtime_id().as_deref(), Some(runtime.as_str()));
        let fresh = m.default_headers();
        assert_eq!(task_of(&fresh), task, "same task");
        assert_ne!(authorization(&fresh), header, "a new timestamp");
        assert_eq!(ingest(&collector, fresh).await.0, 200);
        seen.push(header);
    }
    let listed = registry.list();
    assert_eq!(
        (listed.len(), listed[0].tasks),
        (1, 1),
        "nothing registered"
    );
    let text = logs.text();
    assert_eq!(text.matches("clock skew").count(), 1, "logged once: {text}");
    assert_no_secrets(&text, &seen);
    collector.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
}

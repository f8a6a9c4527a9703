//! Agent identity against a real Tally collector: plain and encrypted task ids, a runtime the
//! backend forgot or a caller reports refused registered again, and thread tasks kept by an
//! embedder's store.

mod common;

use common::*;
use std::sync::Arc;
use tally_auth::ThreadTaskStore;

#[tokio::test]
async fn plain_and_encrypted_task_ids_both_sign_requests_the_collector_accepts() {
    for encrypt in [false, true] {
        let dir = tempdir();
        let collector = collector(dir.path(), encrypt).await;
        let home = tempdir();
        let m = manager(home.path(), &collector);
        m.prepare_agent_identity().await;
        m.prewarm_thread_task("thread-1").await;
        let identity = m.agent_identity().unwrap_or_else(|| panic!("identity"));
        let thread_task = identity.thread_task("thread-1").unwrap_or_default();
        assert!(
            thread_task.starts_with("task_"),
            "encrypt={encrypt}: {thread_task}"
        );
        assert_eq!(task_of(&m.thread_headers("thread-1")), thread_task);
        assert_ne!(task_of(&m.default_headers()), thread_task);
        assert_eq!(ingest(&collector, m.default_headers()).await.0, 200);
        assert_eq!(
            ingest(&collector, m.thread_headers("thread-1")).await.0,
            200
        );
        let listed = collector.identities().map(|r| r.list()).unwrap_or_default();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].tasks, 2, "background and thread-1");
        collector.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
    }
}

#[tokio::test]
async fn a_refused_assertion_reported_by_a_caller_registers_again() {
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
    let first = identity.runtime_id().unwrap_or_default();
    // Codes that do not say the runtime is gone change nothing.
    assert!(!m.agent_assertion_refused("agent_assertion_expired").await);
    assert!(!m.agent_assertion_refused("agent_task_unknown").await);
    assert_eq!(identity.runtime_id().as_deref(), Some(first.as_str()));

    assert_eq!(registry.revoke(&first).await, Ok(true));
    let (status, code) = ingest(&collector, m.default_headers()).await;
    assert_eq!((status, code.as_str()), (401, "agent_runtime_revoked"));
    assert!(m.agent_assertion_refused(&code).await);
    assert_ne!(identity.runtime_id().as_deref(), Some(first.as_str()));
    assert_eq!(ingest(&collector, m.default_headers()).await.0, 200);
    collector.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_runtime_the_backend_forgot_is_registered_again_with_the_same_key() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let first_dir = tempdir();
    let first_collector = collector_on(listener, first_dir.path(), false).await;
    let home = tempdir();
    let m = manager(home.path(), &first_collector);
    m.prepare_agent_identity().await;
    let identity = m.agent_identity().unwrap_or_else(|| panic!("identity"));
    let first = identity.runtime_id().unwrap_or_default();
    let key = identity.public_key();
    first_collector
        .shutdown()
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // A new collector on the same address that never saw the runtime (its registry is empty).
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("rebind: {e}"));
    let second_dir = tempdir();
    let collector = collector_on(listener, second_dir.path(), false).await;
    m.prewarm_thread_task("thread-1").await;
    let second = identity.runtime_id().unwrap_or_default();
    assert!(!second.is_empty() && second != first);
    assert_eq!(
        identity.public_key(),
        key,
        "an unknown runtime keeps its key"
    );
    assert_eq!(
        ingest(&collector, m.thread_headers("thread-1")).await.0,
        200
    );
    collector.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn thread_tasks_kept_by_a_store_come_back_for_a_resumed_thread() {
    let dir = tempdir();
    let collector = collector(dir.path(), false).await;
    let home = tempdir();
    let store = Arc::new(MemoryStore::default());
    let m = manager(home.path(), &collector);
    m.set_thread_task_store(store.clone());
    m.prepare_agent_identity().await;
    m.prewarm_thread_task("thread-1").await;
    let identity = m.agent_identity().unwrap_or_else(|| panic!("identity"));
    let runtime = identity.runtime_id().unwrap_or_default();
    let task = identity.thread_task("thread-1").unwrap_or_default();
    assert_eq!(store.load(&runtime, "thread-1"), Some(task.clone()));
    let file = tally_auth::auth_json::read(home.path())
        .ok()
        .flatten()
        .and_then(|f| f.agent_identity)
        .unwrap_or_default();
    assert!(file.thread_tasks.is_empty(), "not in auth.json");

    // A restart: the resumed thread gets its task from the store, nothing is registered.
    let again = manager(home.path(), &collector);
    again.set_thread_task_store(store.clone());
    again.prewarm_thread_task("thread-1").await;
    assert_eq!(task_of(&again.thread_headers("thread-1")), task);
    assert_eq!(
        ingest(&collector, again.thread_headers("thread-1")).await.0,
        200
    );
    let listed = collector.identities().map(|r| r.list()).unwrap_or_default();
    assert_eq!(listed[0].tasks, 2, "background and thread-1 only");
    collector.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
}

fn authorization_value(headers: &[(http::HeaderName, http::HeaderValue)]) -> http::HeaderValue {
    headers
        .iter()
        .find(|(n, _)| n == http::header::AUTHORIZATION)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("an authorization header"))
}

#[tokio::test]
async fn a_live_thread_of_a_replaced_runtime_gets_a_new_task_on_its_next_request() {
    let dir = tempdir();
    let collector = collector(dir.path(), false).await;
    let registry = collector
        .identities()
        .cloned()
        .unwrap_or_else(|| panic!("registry"));
    let home = tempdir();
    let m = manager(home.path(), &collector);
    m.prepare_agent_identity().await;
    m.prewarm_thread_task("thread-1").await;
    let identity = m.agent_identity().unwrap_or_else(|| panic!("identity"));
    let first = identity.runtime_id().unwrap_or_default();
    let old_task = identity.thread_task("thread-1").unwrap_or_default();
    assert!(!old_task.is_empty());

    // The background request is refused, the runtime replaced: thread-1's task is of the old one.
    assert_eq!(registry.revoke(&first).await, Ok(true));
    let refused = m.default_headers();
    let (status, code) = ingest(&collector, refused.clone()).await;
    assert_eq!((status, code.as_str()), (401, "agent_runtime_revoked"));
    assert!(
        m.recover_refused_assertion(&authorization_value(&refused), &code)
            .await
    );
    let second = identity.runtime_id().unwrap_or_default();
    assert_ne!(second, first);
    assert_eq!(identity.thread_task("thread-1"), None);

    // Its next request registers a task of the new runtime instead of using the background one.
    let headers = m.thread_request_headers("thread-1").await;
    let new_task = task_of(&headers);
    assert!(!new_task.is_empty() && new_task != old_task);
    assert_eq!(
        identity.thread_task("thread-1").as_deref(),
        Some(new_task.as_str())
    );
    assert_ne!(
        task_of(&m.default_headers()),
        new_task,
        "not the background task"
    );
    assert_eq!(ingest(&collector, headers).await.0, 200);

    // A second refusal of the old header (a request that was in flight) does not drop the new
    // runtime: the caller just signs again.
    assert!(
        m.recover_refused_assertion(&authorization_value(&refused), &code)
            .await
    );
    assert_eq!(identity.runtime_id().as_deref(), Some(second.as_str()));
    // A thread never prewarmed is not registered by a request; a bearer header never recovers.
    assert_eq!(
        task_of(&m.thread_request_headers("thread-x").await),
        task_of(&m.default_headers())
    );
    let bearer = http::HeaderValue::from_static("Bearer x");
    assert!(!m.recover_refused_assertion(&bearer, &code).await);
    let listed = registry.list();
    assert_eq!(listed.len(), 2);
    collector.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn concurrent_requests_of_a_new_thread_register_one_task() {
    let dir = tempdir();
    let collector = collector(dir.path(), false).await;
    let home = tempdir();
    let m = manager(home.path(), &collector);
    m.prepare_agent_identity().await;
    // Two prewarms (a start and a resume) and a request that waits for the thread's task.
    let ((), (), headers) = tokio::join!(
        m.prewarm_thread_task("thread-1"),
        m.prewarm_thread_task("thread-1"),
        m.thread_request_headers("thread-1")
    );
    let task = m
        .agent_identity()
        .and_then(|i| i.thread_task("thread-1"))
        .unwrap_or_default();
    assert!(!task.is_empty());
    assert_eq!(
        task_of(&headers),
        task,
        "the request waited for the thread's task"
    );
    let listed = collector.identities().map(|r| r.list()).unwrap_or_default();
    assert_eq!(listed[0].tasks, 2, "background and thread-1 only");
    collector.shutdown().await.unwrap_or_else(|e| panic!("{e}"));
}

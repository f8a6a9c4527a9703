use super::*;
use crate::event_sink::{RequestResolution, ThreadEventSink};
use crate::thread_manager::ClientIdentity;
use crate::Config;
use tally_protocol::types::{ThreadForkParams, ThreadResumeParams, ThreadStartParams};
use tally_protocol::{ServerNotification, ServerRequest};

struct NoSink;

#[async_trait::async_trait]
impl ThreadEventSink for NoSink {
    async fn notify(&self, _: &str, _: ServerNotification) {}
    async fn request(&self, _: &str, _: ServerRequest) -> RequestResolution {
        RequestResolution::Cancelled
    }
    async fn resolve_turn_requests(&self, _: &str, _: &str) {}
}

fn manager(home: &std::path::Path) -> Arc<ThreadManager> {
    std::fs::write(
        home.join("config.toml"),
        "model_provider = \"tally-offline\"\n",
    )
    .expect("config");
    let config = Config::load(home).expect("config loads");
    Arc::new(ThreadManager::new(Arc::new(config), Arc::new(NoSink)))
}

fn start(threads: &ThreadManager, ephemeral: bool) -> String {
    let params = ThreadStartParams {
        ephemeral: Some(ephemeral),
        ..ThreadStartParams::default()
    };
    threads
        .start_thread(params, &ClientIdentity::default())
        .expect("thread starts")
        .thread
        .id
}

#[test]
fn a_task_saved_with_a_thread_comes_back_after_a_restart_for_the_same_runtime_only() {
    let home = tempfile::tempdir().expect("tempdir");
    let threads = manager(home.path());
    let store = RolloutThreadTaskStore::new(&threads);
    let id = start(&threads, false);
    assert_eq!(store.load("rt-1", &id), None);
    store.save("rt-1", &id, "task-1").expect("saved");
    assert_eq!(store.load("rt-1", &id).as_deref(), Some("task-1"));
    assert_eq!(store.load("rt-2", &id), None, "another runtime's task");

    // A restart: readable before and after the thread is resumed.
    drop(threads);
    let threads = manager(home.path());
    let store = RolloutThreadTaskStore::new(&threads);
    assert_eq!(store.load("rt-1", &id).as_deref(), Some("task-1"));
    let params = ThreadResumeParams {
        thread_id: id.clone(),
        ..ThreadResumeParams::default()
    };
    threads
        .resume_thread(params, &ClientIdentity::default())
        .expect("resumes");
    assert_eq!(store.load("rt-1", &id).as_deref(), Some("task-1"));
    // A new runtime's task replaces it (the last line wins).
    store.save("rt-2", &id, "task-2").expect("saved");
    assert_eq!(store.load("rt-2", &id).as_deref(), Some("task-2"));
    assert_eq!(store.load("rt-1", &id), None);
    let rollout = std::fs::read_to_string(crate::rollout::rollout_path(
        &threads.config().sessions_dir(),
        &id,
    ))
    .expect("rollout");
    assert!(rollout.contains(
        r#"{"type":"agent_task","payload":{"agent_runtime_id":"rt-2","task_id":"task-2"}}"#
    ));
}

#[test]
fn a_fork_does_not_inherit_its_sources_task() {
    let home = tempfile::tempdir().expect("tempdir");
    let threads = manager(home.path());
    let store = RolloutThreadTaskStore::new(&threads);
    let id = start(&threads, false);
    store.save("rt-1", &id, "task-1").expect("saved");
    let params = ThreadForkParams {
        thread_id: id.clone(),
        ..ThreadForkParams::default()
    };
    let fork = threads
        .fork_thread(params, &ClientIdentity::default())
        .expect("forks")
        .thread
        .id;
    assert_ne!(fork, id);
    assert_eq!(store.load("rt-1", &fork), None);
    store.save("rt-1", &fork, "task-2").expect("saved");
    assert_eq!(store.load("rt-1", &fork).as_deref(), Some("task-2"));
    assert_eq!(store.load("rt-1", &id).as_deref(), Some("task-1"));
}

#[test]
fn ephemeral_and_unknown_threads_keep_nothing_and_the_store_does_not_keep_threads_alive() {
    let home = tempfile::tempdir().expect("tempdir");
    let threads = manager(home.path());
    let store = RolloutThreadTaskStore::new(&threads);
    let id = start(&threads, true);
    store.save("rt-1", &id, "task-1").expect("nothing to keep");
    assert_eq!(store.load("rt-1", &id), None);
    let unknown = uuid::Uuid::new_v4().to_string();
    assert!(store.save("rt-1", &unknown, "task-1").is_err());
    assert_eq!(store.load("rt-1", &unknown), None);
    assert_eq!(store.load("rt-1", "../not-a-thread-id"), None);

    let weak = Arc::downgrade(&threads);
    drop(threads);
    assert!(
        weak.upgrade().is_none(),
        "the store holds the manager weakly"
    );
    store
        .save("rt-1", &id, "task-1")
        .expect("a no-op at shutdown");
    assert_eq!(store.load("rt-1", &id), None);
}

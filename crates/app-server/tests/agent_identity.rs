//! Agent identity end to end: a Tally app-server with `use_agent_identity` registers with a real
//! Tally collector, its thread gets a task, model requests and analytics batches go out signed
//! and are accepted; with the feature off everything is bearer. No secret reaches the logs.

// Its own binary: these tests capture logs with a thread-scoped subscriber, and tracing caches
// per process whether a log line is wanted, so other tests running beside them without one could
// switch the lines off and make the "nothing secret was logged" checks see nothing.
#[path = "suite/common/mod.rs"]
mod common;

use base64::Engine;
use common::*;
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tally_collector::config::Scope;
use tally_collector::{CollectorConfig, TokenConfig, Unauthenticated};
use tally_test_support::{sse, MockResponsesServer, SchemaMode};

const TEAM_TOKEN: &str = "team-token-7f3a9c";

async fn start_collector(dir: &tempfile::TempDir) -> tally_collector::CollectorHandle {
    let mut config = CollectorConfig::embedded(dir.path().join("collector.sqlite"));
    config.allow_unauthenticated = Unauthenticated::Deny;
    config.tokens = vec![TokenConfig {
        token: Some(TEAM_TOKEN.into()),
        token_sha256: None,
        account: Some("team-a".into()),
        label: "team".into(),
        scopes: vec![Scope::Ingest],
    }];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    tally_collector::start(config, listener)
        .await
        .expect("collector starts")
}

/// A home whose model provider uses the OpenAI login, with analytics to `collector`, a host it
/// trusts with the login (`[agent_identity] allowed_hosts`).
fn home(mock: &MockResponsesServer, collector: &str, identity: bool) -> tempfile::TempDir {
    home_trusting(mock, collector, identity, &["127.0.0.1"])
}

fn home_trusting(
    mock: &MockResponsesServer,
    collector: &str,
    identity: bool,
    allowed_hosts: &[&str],
) -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("tempdir");
    let mut config = format!(
        r#"model = "gpt-test"
model_provider = "mock"

[model_providers.mock]
name = "Mock"
base_url = "{}"
env_key = "OPENAI_API_KEY"
requires_openai_auth = true
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = true
collector_url = "{collector}"
"#,
        mock.base_url()
    );
    let allowed: Vec<String> = allowed_hosts.iter().map(|h| format!("\"{h}\"")).collect();
    config.push_str(&format!(
        "\n[agent_identity]\nallowed_hosts = [{}]\n",
        allowed.join(", ")
    ));
    if identity {
        config.push_str(&format!(
            "authapi_base_url = \"{collector}/api/accounts\"\n\n[features]\nuse_agent_identity = true\n"
        ));
    }
    std::fs::write(home.path().join("config.toml"), config).expect("config");
    std::fs::write(
        home.path().join("auth.json"),
        json!({"OPENAI_API_KEY": TEAM_TOKEN}).to_string(),
    )
    .expect("auth.json");
    home
}

async fn metrics(collector: &str) -> String {
    reqwest::get(format!("{collector}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs one thread with one turn; returns the thread id and the model request's authorization.
async fn run_session(
    server: &Arc<tally_app_server::AppServer>,
    mock: &MockResponsesServer,
    wait_for_task: bool,
) -> (String, String) {
    let mut client = line_client(server, SchemaMode::Stable);
    let thread_id = start_thread(&mut client).await;
    if wait_for_task {
        let auth = server.auth();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while auth
            .agent_identity()
            .and_then(|i| i.thread_task(&thread_id))
            .is_none()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "thread task registered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    mock.enqueue_stream(sse::text_turn_streamed("msg_1", &["hello"]));
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": [{"type": "text", "text": "hi", "text_elements": []}]}),
        )
        .await;
    client.notification("turn/completed").await;
    let requests = mock.wait_for_requests(1, Duration::from_secs(5)).await;
    let authorization = requests[0]
        .header("authorization")
        .expect("model request authorization")
        .to_string();
    (thread_id, authorization)
}

/// Flushes analytics and waits until the collector has stored at least one event.
async fn flush_and_wait(server: &Arc<tally_app_server::AppServer>, collector: &str) -> String {
    server.shutdown().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics(collector).await;
        if metric(&text, "tally_collector_events_ingested_total") > 0 {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "events stored: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// Current-thread runtime: the captured subscriber (thread-local default) sees every task.
#[tokio::test]
async fn agent_identity_round_trip_signs_model_and_analytics_and_logs_no_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().expect("tempdir");
    let collector = start_collector(&dir).await;
    let collector_url = collector.base_url();
    let mock = MockResponsesServer::start().await;
    let home = home(&mock, &collector_url, true);
    let server = server(&home);

    let (thread_id, authorization) = run_session(&server, &mock, true).await;
    let credential = authorization
        .strip_prefix("AgentAssertion ")
        .unwrap_or_else(|| panic!("model request is signed: {authorization}"));
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(credential)
        .expect("base64url");
    let assertion: serde_json::Value = serde_json::from_slice(&decoded).expect("json");
    let identity = server.auth();
    let identity = identity.agent_identity().expect("identity on");
    assert_eq!(
        assertion["agent_runtime_id"].as_str(),
        identity.runtime_id().as_deref()
    );
    // The turn's request used the thread's own task, not the background one.
    assert_eq!(
        assertion["task_id"].as_str(),
        identity.thread_task(&thread_id).as_deref()
    );
    let thread_tasks: Vec<_> = collector_runtimes(&collector);
    assert_eq!(thread_tasks, vec![2], "background task + one thread task");

    let text = flush_and_wait(&server, &collector_url).await;
    // Analytics went out on the background task's assertion and were accepted.
    assert!(
        metric(&text, "tally_collector_agent_assertions_accepted_total") >= 1,
        "{text}"
    );
    assert!(
        text.contains("tally_collector_requests_refused_total{reason=\"auth\"} 0"),
        "{text}"
    );
    collector.shutdown().await.expect("collector stops");

    let logs =
        String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    assert!(
        logs.contains("agent runtime registered"),
        "logs were captured"
    );
    let key_der =
        std::fs::read(home.path().join(tally_auth::agent_identity::KEY_FILE)).expect("key");
    let signature = assertion["signature"]
        .as_str()
        .expect("signature")
        .to_string();
    for secret in [
        TEAM_TOKEN.to_string(),
        credential.to_string(),
        signature,
        base64::engine::general_purpose::STANDARD.encode(&key_der),
        base64::engine::general_purpose::STANDARD.encode(&key_der[key_der.len() - 32..]),
        String::from_utf8_lossy(&key_der[key_der.len() - 32..]).into_owned(),
    ] {
        assert!(!logs.contains(&secret), "a secret reached the logs");
    }
}

fn collector_runtimes(collector: &tally_collector::CollectorHandle) -> Vec<usize> {
    collector
        .identities()
        .map(|r| r.list().iter().map(|r| r.tasks).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn with_the_feature_off_everything_is_bearer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = start_collector(&dir).await;
    let collector_url = collector.base_url();
    let mock = MockResponsesServer::start().await;
    let home = home(&mock, &collector_url, false);
    let server = server(&home);
    assert!(server.auth().agent_identity().is_none());
    let (_, authorization) = run_session(&server, &mock, false).await;
    assert_eq!(authorization, format!("Bearer {TEAM_TOKEN}"));
    let text = flush_and_wait(&server, &collector_url).await;
    assert_eq!(
        metric(&text, "tally_collector_agent_assertions_accepted_total"),
        0
    );
    assert!(collector_runtimes(&collector).is_empty());
    assert!(!home
        .path()
        .join(tally_auth::agent_identity::KEY_FILE)
        .exists());
    collector.shutdown().await.expect("collector stops");
}

/// Waits (with a deadline) until `thread_id` has its own task; returns it.
async fn wait_for_thread_task(
    server: &Arc<tally_app_server::AppServer>,
    thread_id: &str,
) -> String {
    let auth = server.auth();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(task) = auth.agent_identity().and_then(|i| i.thread_task(thread_id)) {
            return task;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "thread task registered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The decoded payload of an `AgentAssertion` header.
fn assertion_of(authorization: &str) -> serde_json::Value {
    let credential = authorization
        .strip_prefix("AgentAssertion ")
        .unwrap_or_else(|| panic!("signed: {authorization}"));
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(credential)
        .expect("base64url");
    serde_json::from_slice(&json).expect("json")
}

/// Runs one more turn on `thread_id`; the authorizations of every model request it made.
async fn run_turn(
    client: &mut tally_test_support::AppClient,
    mock: &MockResponsesServer,
    thread_id: &str,
    requests_before: usize,
) -> (serde_json::Value, Vec<String>) {
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": [{"type": "text", "text": "again", "text_elements": []}]}),
        )
        .await;
    let completed = client.notification("turn/completed").await;
    let requests = mock
        .wait_for_requests(requests_before + 1, Duration::from_secs(5))
        .await;
    let authorizations = requests[requests_before..]
        .iter()
        .map(|r| r.header("authorization").unwrap_or_default().to_string())
        .collect();
    (completed, authorizations)
}

#[tokio::test]
async fn a_resumed_thread_signs_with_the_task_kept_in_its_rollout_and_a_fork_gets_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = start_collector(&dir).await;
    let collector_url = collector.base_url();
    let mock = MockResponsesServer::start().await;
    let home = home(&mock, &collector_url, true);
    let first = server(&home);
    let (thread_id, authorization) = run_session(&first, &mock, true).await;
    let task = assertion_of(&authorization)["task_id"]
        .as_str()
        .expect("task")
        .to_string();

    // Kept with the thread: a rollout line with the runtime and the task, nothing secret; not
    // in auth.json.
    let rollout = std::fs::read_to_string(
        home.path()
            .join("sessions")
            .join(format!("rollout-{thread_id}.jsonl")),
    )
    .expect("rollout");
    let line = rollout
        .lines()
        .find(|l| l.starts_with(r#"{"type":"agent_task""#))
        .expect("an agent_task line");
    let kept: serde_json::Value = serde_json::from_str(line).expect("json");
    assert_eq!(kept["payload"]["task_id"].as_str(), Some(task.as_str()));
    assert_eq!(
        kept["payload"].as_object().map(|o| o.len()),
        Some(2),
        "runtime and task only: {line}"
    );
    let auth_json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(home.path().join("auth.json")).expect("auth.json"),
    )
    .expect("json");
    assert!(
        !auth_json.to_string().contains(&task),
        "thread tasks are not in auth.json"
    );
    first.shutdown().await;
    drop(first);

    // A restart: the resumed thread gets its task back without registering one.
    let second = server(&home);
    let mut client = line_client(&second, SchemaMode::Stable);
    client.initialize(false).await;
    client
        .call_ok("thread/resume", json!({"threadId": thread_id}))
        .await;
    assert_eq!(wait_for_thread_task(&second, &thread_id).await, task);
    assert_eq!(collector_runtimes(&collector), vec![2]);
    mock.enqueue_stream(sse::text_turn_streamed("msg_2", &["again"]));
    let (_, authorizations) = run_turn(&mut client, &mock, &thread_id, 1).await;
    assert_eq!(
        assertion_of(&authorizations[0])["task_id"].as_str(),
        Some(task.as_str())
    );

    // A fork registers its own task.
    let fork = client
        .call_ok("thread/fork", json!({"threadId": thread_id}))
        .await;
    let fork_id = fork["thread"]["id"].as_str().expect("fork id").to_string();
    let fork_task = wait_for_thread_task(&second, &fork_id).await;
    assert_ne!(fork_task, task);
    assert_eq!(collector_runtimes(&collector), vec![3]);
    second.shutdown().await;
    collector.shutdown().await.expect("collector stops");
}

// Current-thread runtime: the captured subscriber (thread-local default) sees every task.
#[tokio::test]
async fn a_model_request_refused_for_a_revoked_runtime_is_signed_again_with_a_new_thread_task() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().expect("tempdir");
    let collector = start_collector(&dir).await;
    let collector_url = collector.base_url();
    let registry = collector.identities().cloned().expect("registry");
    let mock = MockResponsesServer::start().await;
    let home = home(&mock, &collector_url, true);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    let thread_id = start_thread(&mut client).await;
    let old_task = wait_for_thread_task(&server, &thread_id).await;
    let auth = server.auth();
    let identity = auth.agent_identity().expect("identity on");
    let old_runtime = identity.runtime_id().expect("registered");

    // Revoked: the backend refuses the turn's first request with the reason code.
    assert_eq!(registry.revoke(&old_runtime).await, Ok(true));
    mock.enqueue(tally_test_support::MockReply::Status {
        status: 401,
        body: json!({"error": {"code": "agent_runtime_revoked", "message": "revoked"}}).to_string(),
        retry_after: None,
    });
    mock.enqueue_stream(sse::text_turn_streamed("msg_1", &["hello"]));
    let (completed, authorizations) = run_turn(&mut client, &mock, &thread_id, 0).await;
    assert_eq!(
        completed["params"]["turn"]["status"], "completed",
        "{completed}"
    );
    let requests = mock.wait_for_requests(2, Duration::from_secs(5)).await;
    assert_eq!(requests.len(), 2, "one retry, no loop");
    let all: Vec<String> = requests
        .iter()
        .map(|r| r.header("authorization").unwrap_or_default().to_string())
        .collect();
    let (refused, retried) = (assertion_of(&all[0]), assertion_of(&all[1]));
    assert_eq!(
        refused["agent_runtime_id"].as_str(),
        Some(old_runtime.as_str())
    );
    assert_eq!(refused["task_id"].as_str(), Some(old_task.as_str()));
    let new_runtime = identity.runtime_id().expect("registered again");
    assert_ne!(new_runtime, old_runtime);
    assert_eq!(
        retried["agent_runtime_id"].as_str(),
        Some(new_runtime.as_str())
    );
    // The live thread got a task of the new runtime, not the background task.
    let new_task = identity.thread_task(&thread_id).expect("a new thread task");
    assert_eq!(retried["task_id"].as_str(), Some(new_task.as_str()));
    assert_ne!(new_task, old_task);
    let background = assertion_of(
        auth.default_headers()
            .iter()
            .find(|(n, _)| n == "authorization")
            .and_then(|(_, v)| v.to_str().ok())
            .unwrap_or_default(),
    );
    assert_ne!(background["task_id"].as_str(), Some(new_task.as_str()));
    assert_eq!(authorizations.len(), 2);

    // Analytics still arrive, signed by the new runtime.
    let text = flush_and_wait(&server, &collector_url).await;
    assert!(
        metric(&text, "tally_collector_agent_assertions_accepted_total") >= 1,
        "{text}"
    );

    // Refused again at once: registering again is paused (cooldown), so the request is sent
    // once more on bearer; nothing loops.
    assert_eq!(registry.revoke(&new_runtime).await, Ok(true));
    mock.enqueue(tally_test_support::MockReply::Status {
        status: 401,
        body: json!({"error": {"code": "agent_runtime_revoked", "message": "revoked"}}).to_string(),
        retry_after: None,
    });
    mock.enqueue_stream(sse::text_turn_streamed("msg_2", &["again"]));
    let (completed, again) = run_turn(&mut client, &mock, &thread_id, 2).await;
    assert_eq!(
        completed["params"]["turn"]["status"], "completed",
        "{completed}"
    );
    assert_eq!(mock.requests().len(), 4, "one retry, no loop");
    assert_eq!(
        assertion_of(&again[0])["agent_runtime_id"].as_str(),
        Some(new_runtime.as_str())
    );
    assert_eq!(again[1], format!("Bearer {TEAM_TOKEN}"));
    assert_eq!(identity.runtime_id(), None);
    collector.shutdown().await.expect("collector stops");

    let logs =
        String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
    assert!(logs.contains("registering a new one"), "logs were captured");
    for header in all.iter().chain(&again[..1]) {
        let credential = header.trim_start_matches("AgentAssertion ");
        assert!(!logs.contains(credential), "an assertion reached the logs");
        let signature = assertion_of(header)["signature"]
            .as_str()
            .unwrap_or("never")
            .to_string();
        assert!(!logs.contains(&signature), "a signature reached the logs");
    }
    assert!(!logs.contains(TEAM_TOKEN), "the token reached the logs");
    let key_der =
        std::fs::read(home.path().join(tally_auth::agent_identity::KEY_FILE)).expect("key");
    assert!(!logs.contains(&base64::engine::general_purpose::STANDARD.encode(&key_der)));
}

#[tokio::test]
async fn a_collector_the_config_does_not_trust_never_gets_the_login() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collector = start_collector(&dir).await;
    let collector_url = collector.base_url();
    let mock = MockResponsesServer::start().await;
    // The login (an API key that the collector would accept) is not sent to a host outside
    // [agent_identity] allowed_hosts: the collector sees requests without credentials.
    let home = home_trusting(&mock, &collector_url, false, &[]);
    let server = server(&home);
    let (_, authorization) = run_session(&server, &mock, false).await;
    assert_eq!(
        authorization,
        format!("Bearer {TEAM_TOKEN}"),
        "the model still gets it"
    );
    server.shutdown().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let refused = r#"tally_collector_requests_refused_total{reason="auth"}"#;
    loop {
        let text = metrics(&collector_url).await;
        if metric(&text, refused) > 0 {
            assert_eq!(
                metric(&text, "tally_collector_events_ingested_total"),
                0,
                "{text}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no POST arrived: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    collector.shutdown().await.expect("collector stops");
}

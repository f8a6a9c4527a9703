//! The real `tally app-server` binary over stdio: a full offline session, then a prompt exit on EOF.

use serde_json::json;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tally_test_support::{AppClient, FakeCollector, SchemaMode};

fn tally(home: &std::path::Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tally"));
    cmd.arg("--home")
        .arg(home)
        .env_remove("OPENAI_API_KEY")
        .env_remove("TALLY_HOME")
        .env_remove("CODEX_HOME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// A home whose analytics go to `collector`.
fn home_sending_to(collector: &FakeCollector) -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        home.path().join("config.toml"),
        format!("[analytics]\ncollector_url = \"{}\"\n", collector.url()),
    )
    .expect("config");
    home
}

/// Spawns `cmd` (an `app-server`) with a client on its stdio.
fn spawn_client(mut cmd: tokio::process::Command) -> (tokio::process::Child, AppClient) {
    let mut child = cmd.spawn().expect("spawn tally");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    (
        child,
        AppClient::over_lines(stdout, stdin, SchemaMode::Stable),
    )
}

/// `tally app-server` sending analytics to a test collector, after one offline turn.
async fn one_turn_sending_analytics() -> (
    FakeCollector,
    tempfile::TempDir,
    tokio::process::Child,
    AppClient,
) {
    let collector = FakeCollector::start().await;
    let home = home_sending_to(&collector);
    let mut cmd = tally(home.path());
    cmd.arg("app-server");
    let (child, mut client) = spawn_client(cmd);
    client.initialize(false).await;
    one_offline_turn(&mut client, "hi").await;
    (collector, home, child, client)
}

/// A thread with one completed turn of the offline model saying `text`.
async fn one_offline_turn(client: &mut AppClient, text: &str) -> serde_json::Value {
    let started = client.call_ok("thread/start", json!({})).await;
    client
        .call_ok(
            "turn/start",
            json!({"threadId": started["thread"]["id"], "input": [{"type": "text", "text": text, "text_elements": []}]}),
        )
        .await;
    client.notification("turn/completed").await
}

#[tokio::test]
async fn stdio_app_server_runs_an_offline_session_and_exits_promptly_on_eof() {
    let home = tempfile::tempdir().expect("tempdir");
    let mut child = tally(home.path())
        .arg("app-server")
        .spawn()
        .expect("spawn tally");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let mut client = AppClient::over_lines(stdout, stdin, SchemaMode::Stable);

    let init = client.initialize(false).await;
    assert!(init["userAgent"]
        .as_str()
        .unwrap_or_default()
        .starts_with("tally-test/0.169.0 ("));
    let account = client
        .call_ok("account/read", json!({"refreshToken": false}))
        .await;
    assert_eq!(account["account"], serde_json::Value::Null);
    let models = client
        .call_ok("model/list", json!({"includeHidden": true}))
        .await;
    assert_eq!(models["data"][0]["isDefault"], true);
    let started = client.call_ok("thread/start", json!({})).await;
    let thread_id = started["thread"]["id"].as_str().expect("id").to_string();
    assert_eq!(started["modelProvider"], "tally-offline");
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": [{"type": "text", "text": "ping", "text_elements": []}]}),
        )
        .await;
    let done = client.notification("turn/completed").await;
    assert_eq!(done["params"]["turn"]["status"], "completed");
    let text = done["params"]["turn"]["items"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(text.contains("ping"), "{text}");

    let closed_at = Instant::now();
    client.close();
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("tally exits after stdin closes")
        .expect("wait");
    assert!(status.success(), "{status:?}");
    assert!(
        closed_at.elapsed() < Duration::from_secs(3),
        "exit took {:?}",
        closed_at.elapsed()
    );
    assert!(
        home.path()
            .join("sessions")
            .read_dir()
            .expect("sessions")
            .count()
            == 1
    );
}

#[tokio::test]
async fn a_bad_config_names_the_file_and_the_key() {
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        home.path().join("config.toml"),
        "[analytics]\nenabled = \"yes\"\n",
    )
    .expect("write");
    let out = tally(home.path())
        .arg("app-server")
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config.toml") && err.contains("enabled"),
        "{err}"
    );
}

#[tokio::test]
async fn schema_command_writes_a_schema_per_method() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let home = tempfile::tempdir().expect("tempdir");
    let status = tally(home.path())
        .arg("schema")
        .arg("--out")
        .arg(out_dir.path())
        .stdout(Stdio::null())
        .status()
        .await
        .expect("run");
    assert!(status.success());
    let text =
        std::fs::read_to_string(out_dir.path().join("turn_start.params.json")).expect("file");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert!(schema["properties"]["threadId"].is_object(), "{schema}");
}

#[tokio::test]
async fn with_analytics_on_the_process_still_exits_promptly_and_flushes_on_eof() {
    let (collector, _home, mut child, client) = one_turn_sending_analytics().await;
    let closed_at = Instant::now();
    client.close();
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("tally exits after stdin closes even with analytics on")
        .expect("wait");
    assert!(status.success());
    assert!(
        closed_at.elapsed() < Duration::from_secs(3),
        "exit took {:?}",
        closed_at.elapsed()
    );
    let events = collector.wait_for_events(2, Duration::from_secs(1)).await;
    let types = tally_test_support::event_types(&events);
    assert_eq!(types, vec!["codex_thread_initialized", "codex_turn_event"]);
}

#[tokio::test]
async fn with_agent_identity_on_the_process_still_exits_promptly_and_keeps_the_task_in_the_rollout()
{
    const TOKEN: &str = "team-token-1b2c";
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = tally_collector::CollectorConfig::embedded(dir.path().join("c.sqlite"));
    config.allow_unauthenticated = tally_collector::Unauthenticated::Deny;
    config.tokens = vec![tally_collector::TokenConfig {
        token: Some(TOKEN.into()),
        token_sha256: None,
        account: Some("team-a".into()),
        label: "team".into(),
        scopes: vec![tally_collector::config::Scope::Ingest],
    }];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let collector = tally_collector::start(config, listener)
        .await
        .expect("collector starts");
    let url = collector.base_url();
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "[analytics]\ncollector_url = \"{url}\"\n\n[features]\nuse_agent_identity = true\n\n[agent_identity]\nauthapi_base_url = \"{url}/api/accounts\"\nallowed_hosts = [\"127.0.0.1\"]\n"
        ),
    )
    .expect("config");
    std::fs::write(
        home.path().join("auth.json"),
        json!({"OPENAI_API_KEY": TOKEN}).to_string(),
    )
    .expect("auth.json");
    let mut child = tally(home.path())
        .arg("app-server")
        .spawn()
        .expect("spawn tally");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let mut client = AppClient::over_lines(stdout, stdin, SchemaMode::Stable);
    client.initialize(false).await;
    let started = client.call_ok("thread/start", json!({})).await;
    let thread_id = started["thread"]["id"].as_str().expect("id").to_string();
    let rollout = home
        .path()
        .join("sessions")
        .join(format!("rollout-{thread_id}.jsonl"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&rollout)
        .unwrap_or_default()
        .contains(r#"{"type":"agent_task""#)
    {
        assert!(
            Instant::now() < deadline,
            "the thread's task is kept in its rollout"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let closed_at = Instant::now();
    client.close();
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("tally exits after stdin closes with agent identity on")
        .expect("wait");
    assert!(status.success());
    assert!(
        closed_at.elapsed() < Duration::from_secs(3),
        "exit took {:?}",
        closed_at.elapsed()
    );
    collector.shutdown().await.expect("collector stops");
}

/// ANALYTICS-EVENTS.md section 4: a prompt, the command it runs, the command's output and an
/// environment value never reach the collector, nor the process's info-level logs.
#[tokio::test]
async fn neither_analytics_nor_info_logs_carry_a_prompt_a_command_or_an_env_value() {
    const PROMPT_CANARY: &str = "pq-canary-prompt-3318";
    const ENV_CANARY: &str = "pq-canary-env-7702";
    let collector = FakeCollector::start().await;
    let home = home_sending_to(&collector);
    let log_path = home.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut cmd = tally(home.path());
    cmd.arg("app-server")
        .env("RUST_LOG", "info")
        .env("TALLY_TEST_SECRET", ENV_CANARY)
        .stderr(log);
    let (mut child, mut client) = spawn_client(cmd);
    client.initialize(false).await;
    let started = client.call_ok("thread/start", json!({})).await;
    let prompt = format!("{PROMPT_CANARY} run: echo \"$TALLY_TEST_SECRET\" {PROMPT_CANARY}");
    client
        .call_ok(
            "turn/start",
            json!({"threadId": started["thread"]["id"], "input": [{"type": "text", "text": prompt, "text_elements": []}]}),
        )
        .await;
    let done = client.notification("turn/completed").await;
    assert_eq!(done["params"]["turn"]["status"], "completed", "{done}");
    let read = client
        .call_ok(
            "thread/read",
            json!({"threadId": started["thread"]["id"], "includeTurns": true}),
        )
        .await;
    assert!(
        read.to_string().contains(ENV_CANARY),
        "the command printed the env value: {read}"
    );
    client.close();
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("tally exits after stdin closes")
        .expect("wait");
    assert!(status.success());
    let events = collector.wait_for_events(3, Duration::from_secs(5)).await;
    let types = tally_test_support::event_types(&events);
    assert!(
        types.contains(&"codex_command_execution_event"),
        "the command ran: {types:?}"
    );
    let logs = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(!logs.is_empty(), "info-level logs were written");
    for canary in [PROMPT_CANARY, ENV_CANARY] {
        for body in collector.bodies() {
            assert!(
                !body.contains(canary),
                "{canary} reached the collector: {body}"
            );
        }
        assert!(!logs.contains(canary), "{canary} in the logs:\n{logs}");
    }
}

/// An IDE stops its app-server with SIGTERM as often as by closing stdin: the process still
/// shuts down in order and delivers the analytics it holds.
#[tokio::test]
async fn sigterm_on_stdio_flushes_analytics_before_exiting() {
    let (collector, _home, mut child, client) = one_turn_sending_analytics().await;
    let pid = child.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("tally exits promptly on SIGTERM")
        .expect("wait");
    assert!(
        status.success(),
        "an orderly exit, not death by signal: {status:?}"
    );
    let events = collector.wait_for_events(2, Duration::from_secs(1)).await;
    let types = tally_test_support::event_types(&events);
    assert_eq!(types, vec!["codex_thread_initialized", "codex_turn_event"]);
    drop(client);
}

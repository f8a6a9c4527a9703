//! A real, unmodified Codex 0.169 against this collector: `codex app-server` over stdio, its
//! `chatgpt_base_url` pointed at the collector, analytics on, a ChatGPT-style `auth.json`, and a
//! mock Responses API as its model. One session (a turn whose command the client approves, then
//! an archive) must reach the store, the report and the dashboard: its events typed, none
//! quarantined, filed under the ChatGPT account, and Codex must call no endpoint the collector
//! lacks.
//!
//! `.ci/run` installs Codex with npm (`@openai/codex@0.169.0`) and names the binary in
//! `TALLY_CODEX_BIN`. Without it the test says so loudly and passes, except under CI (`CI` set),
//! where it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::*;
use serde_json::{json, Value};
use tally_collector::config::Unauthenticated;
use tally_collector::CollectorConfig;
use tally_test_support::{sse, AppClient, MockResponsesServer, SchemaMode};

const ACCOUNT: &str = "account-real-codex";

/// Where `.ci/run` puts the binary when `TALLY_CODEX_BIN` is not set.
const DEFAULT_BINARY: &str =
    "target/codex-npm/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex";

fn codex_binary() -> Option<PathBuf> {
    let binary = match std::env::var_os("TALLY_CODEX_BIN") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(DEFAULT_BINARY),
    };
    if binary.is_file() {
        return Some(binary);
    }
    let message = format!(
        "\n\n!!!!!!!! real Codex NOT FOUND at {}: the collector was NOT tested against it !!!!!!!!\n\
         !!!!!!!! .ci/run installs it: npm install --prefix target/codex-npm @openai/codex@0.169.0 !!!!!!!!\n",
        binary.display()
    );
    eprintln!("{message}");
    println!("{message}");
    assert!(
        std::env::var_os("CI").is_none(),
        "a real Codex is required under CI"
    );
    None
}

/// A JWT-shaped token with the claims Codex reads (it does not check the signature).
fn chatgpt_token(now_s: u64) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = json!({
        "email": "dev@example.com", "iat": now_s, "exp": now_s + 30 * 86_400,
        "https://api.openai.com/auth": {
            "chatgpt_plan_type": "plus", "chatgpt_account_id": ACCOUNT,
            "chatgpt_user_id": "user-1", "user_id": "user-1"
        }
    });
    format!("{}.{}.sig", b64(&json!({"alg": "none"})), b64(&claims))
}

fn write_codex_home(home: &Path, collector_url: &str, model_url: &str) {
    let config = format!(
        r#"model = "gpt-x"
model_provider = "mock"
chatgpt_base_url = "{collector_url}/backend-api/"
approval_policy = "on-request"
sandbox_mode = "read-only"

[analytics]
enabled = true

[model_providers.mock]
name = "mock"
base_url = "{model_url}"
wire_api = "responses"
"#
    );
    std::fs::write(home.join("config.toml"), config).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let token = chatgpt_token(now.as_secs());
    let auth = json!({
        "OPENAI_API_KEY": null,
        "tokens": {"id_token": token, "access_token": token, "refresh_token": "refresh-1",
                   "account_id": ACCOUNT},
        "last_refresh": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
    });
    std::fs::write(home.join("auth.json"), auth.to_string()).unwrap();
}

/// The model asks to run a command outside the sandbox (so the client is asked), then answers.
fn script_model(model: &MockResponsesServer) {
    let call = json!({"cmd": "touch made_by_codex", "sandbox_permissions": "require_escalated",
                      "justification": "test"});
    model.enqueue_stream(vec![
        sse::created("resp_1"),
        sse::output_item_done(sse::function_call(
            "call_1",
            "exec_command",
            &call.to_string(),
        )),
        sse::completed("resp_1", sse::Usage::small()),
    ]);
    model.enqueue_stream(sse::text_turn_whole("msg_1", "done"));
}

/// initialize, thread/start, a turn (approving what Codex asks), thread/archive.
async fn run_session(client: &mut AppClient) {
    client.initialize(false).await;
    let thread = client.call_ok("thread/start", json!({})).await;
    let thread_id = thread["thread"]["id"].as_str().unwrap().to_owned();
    let input = [json!({"type": "text", "text": "make a file"})];
    client
        .call_ok("turn/start", json!({"threadId": thread_id, "input": input}))
        .await;
    let mut approvals = 0;
    loop {
        let message = client.next().await;
        let method = message["method"].as_str().unwrap_or_default();
        if method.ends_with("requestApproval") && message.get("id").is_some() {
            approvals += 1;
            let id = message["id"].clone();
            client
                .send(json!({"id": id, "result": {"decision": "accept"}}))
                .await;
        }
        if method == "turn/completed" {
            break;
        }
    }
    assert_eq!(approvals, 1, "Codex asked for one approval");
    client
        .call_ok("thread/archive", json!({"threadId": thread_id}))
        .await;
}

async fn metric(c: &Running, name: &str) -> f64 {
    let text = c.get_text("/metrics").await;
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_codex_session_is_stored_typed_and_reported() {
    let Some(codex) = codex_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = CollectorConfig::embedded(dir.path().join("analytics.sqlite3"));
    config.allow_unauthenticated = Unauthenticated::Loopback;
    let c = start_with(config, dir).await;
    let model = MockResponsesServer::start().await;
    script_model(&model);

    let home = c.dir.path().join("codex-home");
    let work = c.dir.path().join("work");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    write_codex_home(&home, &c.handle.base_url(), &model.base_url());
    let stderr = std::fs::File::create(c.dir.path().join("codex.stderr")).unwrap();
    let mut child = tokio::process::Command::new(&codex)
        .arg("app-server")
        .env_clear()
        .env("CODEX_HOME", &home)
        .env("HOME", c.dir.path())
        .env("PATH", "/usr/bin:/bin")
        .current_dir(&work)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
    let mut client = AppClient::over_lines(stdout, stdin, SchemaMode::Experimental);
    run_session(&mut client).await;

    let expected = [
        "codex_thread_initialized",
        "codex_review_event",
        "codex_command_execution_event",
        "codex_turn_event",
        "codex_thread_archive_event",
    ];
    // Codex posts each event as it happens, from a task of its own. It is still running while
    // they are awaited: closing its stdin right after `thread/archive` can end it before the last
    // post is made (seen about once in eight runs on a busy machine).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let report = loop {
        let report = c.report().await;
        if report.totals.events >= expected.len() as u64 || tokio::time::Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    client.close();
    let exited = tokio::time::timeout(Duration::from_secs(20), child.wait()).await;
    assert!(
        exited.is_ok(),
        "codex app-server did not exit after stdin closed"
    );
    let stderr = std::fs::read_to_string(c.dir.path().join("codex.stderr")).unwrap_or_default();
    let tail: String = stderr.lines().rev().take(30).collect::<Vec<_>>().join("\n");
    assert_eq!(
        report.totals.events,
        expected.len() as u64,
        "{report:#?}\ncodex stderr (last lines, newest first):\n{tail}"
    );
    assert_eq!(report.totals.quarantined, 0);
    assert_eq!(
        report.totals.untyped_events, 0,
        "every event in its typed table"
    );
    assert_eq!(
        report.clients,
        ["tally-test"],
        "the client's name from initialize"
    );
    assert_eq!(report.totals.sessions, 1);
    assert_eq!(report.totals.turns, 1);
    assert_eq!(report.totals.tool_calls, 1);
    assert_eq!(report.totals.approvals, 1);
    let approvals = &report.approvals;
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    assert_eq!(
        (approvals[0].subject_kind.as_str(), approvals[0].approved),
        ("command_execution", 1)
    );
    assert!(
        report.totals.total_tokens > 0,
        "the mock's token usage is reported"
    );

    let db = rusqlite::Connection::open(c.dir.path().join("analytics.sqlite3")).unwrap();
    let mut stmt = db
        .prepare("SELECT event_type, account, id_source FROM all_events")
        .unwrap();
    let events: Vec<(String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut types: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    types.sort_unstable();
    let mut want = expected.to_vec();
    want.sort_unstable();
    assert_eq!(types, want);
    assert!(
        events.iter().all(|e| e.1 == ACCOUNT && e.2 == "derived"),
        "filed under the ChatGPT account with derived ids: {events:?}"
    );
    let dashboard = c.http.get(c.url("/")).send().await.unwrap();
    assert_eq!(dashboard.status(), 200);
    let page = dashboard.text().await.unwrap();
    assert!(
        page.contains("tally-test") && page.contains("command_execution"),
        "the dashboard shows the session's client and its approval"
    );
    assert_eq!(
        metric(&c, "tally_collector_not_found_total").await,
        0.0,
        "Codex called an endpoint the collector does not have"
    );
    c.handle.shutdown().await.unwrap();
}

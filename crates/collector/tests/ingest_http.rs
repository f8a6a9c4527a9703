//! The ingest endpoint over real HTTP on loopback: what a sender sees.

mod common;

use std::io::Write;

use common::*;
use serde_json::{json, Value};
use tally_collector::fixtures::{batch, session, wire};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[tokio::test]
async fn the_same_batch_twice_is_stored_once() {
    let c = running().await;
    let events = with_ids(session("vscode", 1, 3, an_hour_ago_s()), "s1");
    let n = events.len();
    let body = batch(events);
    let (status, first) = c.post(&body).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first, json!({"accepted": n, "duplicates": 0}));
    let (status, second) = c.post(&body).await;
    assert_eq!(status, 200);
    assert_eq!(second, json!({"accepted": 0, "duplicates": n}));
    assert_eq!(c.report().await.totals.events, n as u64);
    c.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn codex_events_without_ids_are_deduplicated_by_content_and_account() {
    let c = running().await;
    // Exactly what Codex 0.169 sends: no event_id, ChatGPT bearer token, account header,
    // under the /backend-api prefix of its chatgpt_base_url.
    let body = batch(vec![wire(
        "codex_hook_run",
        json!({"thread_id": "thr-1", "turn_id": "turn-1", "product_client_id": "codex_cli_rs",
               "model_slug": "gpt-x", "hook_name": "PreToolUse", "hook_source": "user",
               "handler_type": "command", "execution_mode": "sync", "status": "completed"}),
    )]);
    let send = |account: &'static str| {
        c.http
            .post(c.url(&format!("/backend-api{INGEST}")))
            .bearer_auth("chatgpt-access-token-not-configured")
            .header("chatgpt-account-id", account)
            .header("originator", "codex_cli_rs")
            .json(&body)
            .send()
    };
    for (account, accepted) in [("account-123", 1), ("account-123", 0), ("account-456", 1)] {
        let response = send(account).await.unwrap();
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["accepted"], accepted, "account {account}: {answer}");
    }
    let report = c.report().await;
    assert_eq!(report.totals.hook_runs, 2);
    assert_eq!(report.clients, vec!["codex_cli_rs".to_string()]);
    c.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn gzip_bodies_are_accepted() {
    let c = running().await;
    let body = batch(with_ids(session("vscode", 2, 2, an_hour_ago_s()), "gz"));
    let response = c
        .http
        .post(c.url(INGEST))
        .bearer_auth(TOKEN)
        .header("content-encoding", "gzip")
        .header("content-type", "application/json")
        .body(gzip(body.to_string().as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(c.report().await.totals.turns, 2);
    c.handle.shutdown().await.unwrap();
}

async fn raw_post(c: &Running, body: Vec<u8>, encoding: Option<&str>) -> (u16, Value) {
    let mut request = c.http.post(c.url(INGEST)).bearer_auth(TOKEN).body(body);
    if let Some(e) = encoding {
        request = request.header("content-encoding", e);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn bad_bodies_get_a_clear_4xx_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.max_body_bytes = 64 * 1024;
    config.max_decompressed_bytes = 256 * 1024;
    let c = start_with(config, dir).await;

    let (s, b) = raw_post(&c, b"{\"events\": [".to_vec(), None).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_json")), "{b}");

    let (s, b) = raw_post(&c, br#"{"events": "nope"}"#.to_vec(), None).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_batch")));
    assert_eq!(b["field"], "events");

    let (s, b) = raw_post(&c, br#"{"events": []}"#.to_vec(), Some("gzip")).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_gzip")), "{b}");

    let (s, b) = raw_post(&c, br#"{"events": []}"#.to_vec(), Some("br")).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (415, Some("unsupported_encoding"))
    );

    let bomb = gzip(&vec![b' '; 8 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024);
    let (s, b) = raw_post(&c, bomb, Some("gzip")).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (413, Some("decompressed_too_large"))
    );

    let huge = format!(
        r#"{{"events":[{{"event_type":"x","event_params":{{"s":"{}"}}}}]}}"#,
        "a".repeat(100 * 1024)
    );
    let (s, b) = raw_post(&c, huge.clone().into_bytes(), None).await;
    assert_eq!((s, b["error"].as_str()), (413, Some("body_too_large")));

    // Same size cap when the sender does not announce a length (chunked).
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = huge
        .into_bytes()
        .chunks(8 * 1024)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let response = c
        .http
        .post(c.url(INGEST))
        .bearer_auth(TOKEN)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    assert_eq!(c.report().await.totals.events, 0);
    c.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_partly_invalid_batch_stores_the_valid_events_and_quarantines_the_rest() {
    let c = running().await;
    let ts = an_hour_ago_s();
    let body = batch(vec![
        wire(
            "codex_hook_run",
            json!({"status": "completed", "hook_source": "user", "thread_id": "t"}),
        ),
        wire(
            "codex_turn_event",
            json!({"turn_id": "t1", "duration_ms": "very long", "completed_at": ts}),
        ),
        json!({"event_type": "codex_hook_run"}),
        wire("codex_hook_run", json!({"hook_name": "x".repeat(10_000)})),
        wire(
            "codex_plugin_used",
            json!({"plugin_id": "p", "completed_at": ts}),
        ),
    ]);
    let (status, answer) = c.post(&body).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "invalid_events");
    assert_eq!(answer["accepted"], 2);
    let rejected: Vec<(u64, String)> = answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        vec![
            (1, "events[1].event_params.duration_ms".to_owned()),
            (2, "events[2].event_params".to_owned()),
            (3, "events[3].event_params.hook_name".to_owned()),
        ]
    );
    let report = c.report().await;
    assert_eq!(report.totals.hook_runs, 1);
    assert_eq!(report.totals.quarantined, 3);
    assert_eq!(report.totals.untyped_events, 1);
    assert_eq!(report.other_event_types[0].event_type, "codex_plugin_used");
    assert!(report
        .quarantined
        .iter()
        .any(|q| q.field == "event_params.duration_ms" && q.event_type == "codex_turn_event"));
    assert_eq!(answer["rejected_total"], 3);
    // A retry of the same batch does not quarantine the bad events twice.
    let (status, answer) = c.post(&body).await;
    assert_eq!(status, 400);
    assert_eq!(answer["duplicates"], 2);
    assert_eq!(c.report().await.totals.quarantined, 3);

    // Many bad events: all quarantined and counted, the first 100 listed.
    let bad: Vec<Value> = (0..150).map(|i| json!({"event_type": i})).collect();
    let (status, answer) = c.post(&batch(bad)).await;
    assert_eq!(status, 400);
    assert_eq!(answer["rejected_total"], 150);
    assert_eq!(answer["rejected"].as_array().unwrap().len(), 100);
    assert_eq!(c.report().await.totals.quarantined, 153);
    c.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn credentials_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    config.allow_unauthenticated = tally_collector::Unauthenticated::Deny;
    config.dashboard_public = false;
    let c = start_with(config, dir).await;
    let body = batch(vec![wire("codex_hook_run", json!({"status": "completed"}))]);

    let response = c.http.post(c.url(INGEST)).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"], "missing_credentials");

    let response = c
        .http
        .post(c.url(INGEST))
        .bearer_auth("wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let response = c
        .http
        .post(c.url(INGEST))
        .header("authorization", "AgentAssertion eyJhIjoiYiJ9")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let answer: Value = response.json().await.unwrap();
    // Verified now: `{"a":"b"}` lacks the assertion's fields.
    assert_eq!(answer["error"], "agent_assertion_missing_field");

    // An ingest-only token cannot read; a read token can.
    for (token, path, expected) in [
        (TOKEN, "/api/report", 403),
        (READ_TOKEN, "/api/report", 200),
        (TOKEN, "/", 403),
        (READ_TOKEN, "/metrics", 200),
        (READ_TOKEN, INGEST, 405),
    ] {
        let response = c
            .http
            .get(c.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected, "{token} {path}");
    }
    let response = c.http.get(c.url("/api/report")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    // A browser: the dashboard asks for Basic credentials, and a read token as the password
    // opens it (the user name is not looked at).
    let response = c.http.get(c.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers().get("www-authenticate").cloned();
    assert!(
        challenge.is_some_and(|v| v.to_str().unwrap_or("").starts_with("Basic realm=")),
        "no Basic challenge"
    );
    for (token, path, expected) in [
        (READ_TOKEN, "/", 200),
        (READ_TOKEN, "/api/report", 200),
        (TOKEN, "/", 403),
        ("wrong", "/", 401),
    ] {
        let response = c
            .http
            .get(c.url(path))
            .basic_auth("anyone", Some(token))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected, "basic {token} {path}");
    }
    assert_eq!(c.report().await.totals.events, 0);
    c.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_private_dashboard_needs_a_read_token_even_where_anonymous_ingest_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir);
    assert_eq!(
        config.allow_unauthenticated,
        tally_collector::Unauthenticated::Loopback
    );
    config.dashboard_public = false;
    let c = start_with(config, dir).await;
    // Anonymous sending from this loopback peer is allowed; reading is not.
    let body = batch(vec![wire("codex_hook_run", json!({"status": "completed"}))]);
    let response = c.http.post(c.url(INGEST)).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    for path in ["/", "/api/report", "/metrics"] {
        let response = c.http.get(c.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
        let unknown = c.http.get(c.url(path)).bearer_auth("nope").send().await;
        assert_eq!(
            unknown.unwrap().status(),
            401,
            "{path} with an unknown token"
        );
        let read = c.http.get(c.url(path)).bearer_auth(READ_TOKEN).send().await;
        assert_eq!(read.unwrap().status(), 200, "{path} with the read token");
    }
    c.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_and_health_report_what_happened() {
    let c = running().await;
    let body = batch(with_ids(session("vscode", 3, 1, an_hour_ago_s()), "m"));
    let n = body["events"].as_array().unwrap().len();
    c.post(&body).await;
    c.post(&body).await;
    c.post(&batch(vec![json!({"event_type": 1})])).await;
    let text = c.get_text("/metrics").await;
    assert!(
        text.contains(&format!("tally_collector_events_ingested_total {n}\n")),
        "{text}"
    );
    assert!(text.contains(&format!("tally_collector_events_deduplicated_total {n}\n")));
    assert!(text.contains("tally_collector_events_rejected_total 1\n"));
    assert!(text.contains("tally_collector_queue_depth 0\n"));
    assert!(
        text.contains("tally_collector_store_latency_seconds_count 3\n"),
        "{text}"
    );
    let health: Value = c
        .http
        .get(c.url("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["engine"], "sqlite");
    let ready = c.http.get(c.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready, json!({"status": "ready", "engine": "sqlite"}));
    c.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn codex_startup_endpoints_answer_under_the_prefix() {
    let c = running().await;
    for path in [
        "/backend-api/wham/accounts/check",
        "/backend-api/ps/plugins/installed",
        "/backend-api/wham/usage",
        "/backend-api/wham/settings/user",
        "/backend-api/ps/plugins/suggested/codex",
        "/wham/accounts/check",
    ] {
        let response = c.http.get(c.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let _: Value = response.json().await.unwrap();
    }
    let plugins: Value = c
        .http
        .get(c.url("/backend-api/ps/plugins/installed?scope=GLOBAL"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(plugins["plugins"], json!([]));
    // Codex's apps MCP client finds a server with no tools.
    let mcp = |body: Value| c.http.post(c.url("/backend-api/ps/mcp")).json(&body).send();
    let init: Value = mcp(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                                 "params": {"protocolVersion": "2025-06-18"}}))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    let notified = mcp(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await
        .unwrap();
    assert_eq!(notified.status(), 202);
    let tools: Value = mcp(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tools["result"]["tools"], json!([]));
    let unknown: Value = mcp(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(unknown["error"]["code"], -32601);
    let response = c
        .http
        .get(c.url("/backend-api/wham/unknown"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    let metrics = c.get_text("/metrics").await;
    assert!(
        metrics.contains("tally_collector_not_found_total 1\n"),
        "{metrics}"
    );
    c.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_written_batch_gives_its_body_buffer_back_for_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let collector = tally_collector::Collector::open(config(&dir))
        .await
        .unwrap();
    let state = collector.state();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{INGEST}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(collector.serve(listener, async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let events = with_ids(session("vscode", 1, 3, an_hour_ago_s()), "bb");
    let n = events.len();
    let body = batch(events);
    assert_eq!(state.body_buffers.kept(), 0);
    for expected in [
        json!({"accepted": n, "duplicates": 0}),
        json!({"accepted": 0, "duplicates": n}),
    ] {
        let response = http
            .post(&url)
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap(), expected);
        // The answer comes once the batch is written; its events, which shared the body, are
        // gone by the time the handler ends, so the buffer is a spare again.
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while state.body_buffers.kept() != 1 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the body buffer came back");
    }
    // The state holds a sender of the store queue: the writer drains and ends once it is gone.
    drop(state);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

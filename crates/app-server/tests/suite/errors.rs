//! Bad input: each error has the code and message clients rely on, and the connection keeps working.

use crate::common::*;
use serde_json::json;
use tally_test_support::{AppClient, MockResponsesServer, SchemaMode};

async fn assert_error(
    client: &mut AppClient,
    raw: &str,
    id: serde_json::Value,
    code: i64,
    needle: &str,
) {
    client.send_raw(raw).await;
    let answer = client
        .wait_for(|m| m.get("error").is_some() && m["id"] == id)
        .await;
    assert_eq!(answer["error"]["code"], code, "{raw} -> {answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "{raw}: message {message:?} lacks {needle:?}"
    );
}

async fn still_works(client: &mut AppClient) {
    let listed = client.call("thread/list", json!({})).await;
    assert!(
        listed.get("result").is_some(),
        "connection broken: {listed}"
    );
}

#[tokio::test]
async fn requests_before_initialize_and_a_second_initialize_are_invalid() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    assert_error(
        &mut client,
        r#"{"id":1,"method":"thread/list","params":{}}"#,
        json!(1),
        -32600,
        "Not initialized",
    )
    .await;
    client.initialize(false).await;
    assert_error(
        &mut client,
        r#"{"id":"again","method":"initialize","params":{"clientInfo":{"name":"x","version":"1"}}}"#,
        json!("again"),
        -32600,
        "Already initialized",
    )
    .await;
    still_works(&mut client).await;
}

#[tokio::test]
async fn malformed_messages_get_their_codes_and_the_connection_stays_up() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    // Not JSON: dropped (and counted) without a reply, as Codex does.
    client.send_raw("{not json").await;
    let next = client.call("thread/list", json!({})).await;
    assert!(
        next.get("result").is_some(),
        "no reply to the bad line: {next}"
    );
    assert_eq!(
        server
            .processor_stats()
            .parse_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_error(
        &mut client,
        r#"[1,2,3]"#,
        json!(null),
        -32600,
        "JSON object",
    )
    .await;
    assert_error(
        &mut client,
        r#"{"id":"u","method":"thread/teleport"}"#,
        json!("u"),
        -32601,
        "thread/teleport",
    )
    .await;
    assert_error(
        &mut client,
        r#"{"id":5,"method":"turn/start","params":{"threadId":7,"input":[]}}"#,
        json!(5),
        -32602,
        "threadId",
    )
    .await;
    assert_error(
        &mut client,
        r#"{"id":6,"method":"turn/start","params":{"threadId":"t","input":[{"type":"hologram"}]}}"#,
        json!(6),
        -32602,
        "input",
    )
    .await;
    still_works(&mut client).await;
}

#[tokio::test]
async fn unknown_and_invalid_thread_ids_are_named() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let missing = "01900000-0000-7000-8000-000000000000";
    for method in [
        "thread/resume",
        "thread/read",
        "thread/archive",
        "thread/fork",
    ] {
        let raw =
            json!({"id": method, "method": method, "params": {"threadId": missing}}).to_string();
        assert_error(
            &mut client,
            &raw,
            json!(method),
            -32600,
            &format!("thread not found: {missing}"),
        )
        .await;
    }
    let raw =
        json!({"id": 9, "method": "turn/start", "params": {"threadId": missing, "input": []}})
            .to_string();
    assert_error(&mut client, &raw, json!(9), -32600, "thread not found").await;
    let raw = json!({"id": 10, "method": "thread/read", "params": {"threadId": "not-a-uuid"}})
        .to_string();
    assert_error(
        &mut client,
        &raw,
        json!(10),
        -32600,
        "invalid thread id: not-a-uuid",
    )
    .await;
    still_works(&mut client).await;
}

#[tokio::test]
async fn experimental_fields_need_the_capability_and_client_names_must_be_header_safe() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    assert_error(
        &mut client,
        r#"{"id":1,"method":"initialize","params":{"clientInfo":{"name":"bad\nname","version":"1"}}}"#,
        json!(1),
        -32600,
        "Invalid clientInfo.name",
    )
    .await;
    client.initialize(false).await;
    let raw =
        json!({"id": 2, "method": "thread/start", "params": {"dynamicTools": []}}).to_string();
    assert_error(
        &mut client,
        &raw,
        json!(2),
        -32600,
        "requires experimentalApi capability",
    )
    .await;
    still_works(&mut client).await;
}

#[tokio::test]
async fn an_oversized_line_is_refused_without_dropping_the_connection() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let huge = format!(
        r#"{{"id":1,"method":"thread/start","params":{{"baseInstructions":"{}"}}}}"#,
        "x".repeat(tally_app_server::transport::MAX_MESSAGE_BYTES + 10)
    );
    client.send_raw(&huge).await;
    let answer = client.wait_for(|m| m.get("error").is_some()).await;
    assert_eq!(answer["error"]["code"], -32600);
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("larger than"));
    still_works(&mut client).await;
}

#[tokio::test]
async fn string_and_integer_ids_round_trip_unchanged() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    for id in [
        json!("codex.chatSessionProvider:0"),
        json!(9_007_199_254_740_993_i64),
        json!(-1),
    ] {
        client
            .send(json!({"id": id, "method": "model/list", "params": {}}))
            .await;
        let answer = client.answer_to(&id).await;
        assert!(answer["result"]["data"].is_array(), "{answer}");
    }
}

#[tokio::test]
async fn websocket_health_endpoints_answer_and_browser_origins_are_refused() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let url = websocket_url(&server).await;
    let http = url.replacen("ws://", "http://", 1);
    let ok = reqwest_get(&format!("{http}/readyz"), None).await;
    assert_eq!(ok, 200);
    let refused = reqwest_get(&format!("{http}/healthz"), Some("https://evil.example")).await;
    assert_eq!(refused, 403);
}

async fn reqwest_get(url: &str, origin: Option<&str>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let origin = origin
        .map(|o| format!("Origin: {o}\r\n"))
        .unwrap_or_default();
    let req = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\n{origin}Connection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line")
}

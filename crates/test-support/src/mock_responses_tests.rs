//! Tests of the mock Responses server, driven by a real reqwest client.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use super::sse::{self, Usage};
use super::*;

const WAIT: Duration = Duration::from_secs(10);

fn request_body() -> Value {
    json!({
        "model": "gpt-x", "stream": true, "store": false, "tool_choice": "auto", "parallel_tool_calls": true,
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "tools": [], "reasoning": {"summary": "auto"}, "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "thread-1"
    })
}

async fn post(server: &MockResponsesServer) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/responses", server.base_url()))
        .header("accept", "text/event-stream")
        .header("session-id", "thread-1")
        .header("Authorization", "Bearer sk-test")
        .json(&request_body())
        .send()
        .await
        .expect("request reaches the mock")
}

/// Parses SSE text into `(event, data)` pairs, skipping comment lines, as a client would.
fn parse_sse(text: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut event = String::new();
        let mut data = String::new();
        for line in block.lines() {
            if line.starts_with(':') {
                continue;
            } else if let Some(v) = line.strip_prefix("event: ") {
                event = v.to_string();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push_str(v);
            }
        }
        if !event.is_empty() {
            out.push((event, serde_json::from_str(&data).expect("data is JSON")));
        }
    }
    out
}

#[tokio::test]
async fn streams_scripted_events_and_records_the_request() {
    let server = MockResponsesServer::start().await;
    assert!(
        server.base_url().starts_with("http://127.0.0.1:") && server.base_url().ends_with("/v1")
    );
    server.enqueue(MockReply::Stream(sse::text_turn_streamed(
        "msg_1",
        &["Hel", "lo"],
    )));
    let response = post(&server).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = parse_sse(&response.text().await.expect("body"));
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.output_item.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_item.done",
            "response.completed"
        ]
    );
    assert_eq!(
        events[0].1,
        json!({"type": "response.created", "response": {"id": "resp_msg_1"}})
    );
    assert_eq!(events[2].1["item_id"], "msg_1");
    assert_eq!(events[3].1["delta"], "lo");
    assert_eq!(
        events[4].1["item"]["content"][0],
        json!({"type": "output_text", "text": "Hello", "annotations": []})
    );
    assert_eq!(
        events[5].1["response"]["usage"]["input_tokens_details"]["cached_tokens"],
        0
    );
    assert_eq!(events[5].1["response"]["usage"]["total_tokens"], 15);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/responses")
    );
    assert_eq!(request.header("Session-Id"), Some("thread-1"));
    assert_eq!(request.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.body, request_body());
}

#[tokio::test]
async fn whole_and_function_call_turns_and_builders() {
    let server = MockResponsesServer::start().await;
    server.enqueue_stream(sse::text_turn_whole("msg_9", "Done."));
    server.enqueue_stream(sse::function_call_turn(
        "call_1",
        "exec_command",
        r#"{"cmd":"ls"}"#,
    ));
    server.enqueue_stream(vec![
        sse::created("resp_r"),
        sse::reasoning_summary_text_delta("rs_1", 0, "Thinking").delayed(Duration::from_millis(20)),
        sse::completed("resp_r", Usage::new(100, 40, 20, 8)),
        sse::failed("resp_r", "boom"),
    ]);
    let whole = parse_sse(&post(&server).await.text().await.unwrap());
    assert_eq!(whole.len(), 3);
    assert_eq!(whole[1].1["item"], sse::assistant_message("msg_9", "Done."));
    let call = parse_sse(&post(&server).await.text().await.unwrap());
    assert_eq!(call[1].1["item"]["type"], "function_call");
    assert_eq!(call[1].1["item"]["call_id"], "call_1");
    assert_eq!(call[1].1["item"]["arguments"], r#"{"cmd":"ls"}"#);
    let other = parse_sse(&post(&server).await.text().await.unwrap());
    assert_eq!(other[1].1["summary_index"], 0);
    assert_eq!(
        other[2].1["response"]["usage"],
        json!({"input_tokens": 100, "input_tokens_details": {"cached_tokens": 40}, "output_tokens": 20,
               "output_tokens_details": {"reasoning_tokens": 8}, "total_tokens": 120})
    );
    assert_eq!(other[3].1["response"]["error"]["message"], "boom");
    assert_eq!(server.pending_replies(), 0);
}

#[tokio::test]
async fn status_replies_and_empty_script() {
    let server = MockResponsesServer::start().await;
    server.enqueue(MockReply::Status {
        status: 429,
        body: r#"{"error":{"message":"slow down"}}"#.to_string(),
        retry_after: Some(2),
    });
    server.enqueue(MockReply::error(500, "internal"));
    let response = post(&server).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"error":{"message":"slow down"}}"#
    );
    let response = post(&server).await;
    assert_eq!(response.status(), 500);
    assert!(response.headers().get("retry-after").is_none());
    // Queue empty: a clear 500.
    let response = post(&server).await;
    assert_eq!(response.status(), 500);
    assert!(response.text().await.unwrap().contains("no scripted reply"));
    // Wrong path: 404 naming the expected one, still recorded.
    let response = reqwest::Client::new()
        .post(format!("http://{}/responses", server.addr()))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("/v1/responses"));
    assert_eq!(server.requests().len(), 4);
}

#[tokio::test]
async fn cut_stream_ends_without_completed() {
    let server = MockResponsesServer::start().await;
    server.enqueue(MockReply::StreamThenCut(vec![
        sse::created("resp_1"),
        sse::output_text_delta("msg_1", "partial"),
    ]));
    let events = parse_sse(&post(&server).await.text().await.expect("clean end of body"));
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|(e, _)| e != "response.completed"));

    server.enqueue(MockReply::StreamThenAbort(vec![sse::created("resp_2")]));
    assert!(
        post(&server).await.text().await.is_err(),
        "aborted body must be a transport error"
    );
}

#[tokio::test]
async fn hanging_stream_stays_open_until_the_client_leaves() {
    let server = MockResponsesServer::start().await;
    server.enqueue(MockReply::StreamThenHang(vec![sse::created("resp_1")]));
    server.enqueue_stream(sse::text_turn_whole("msg_2", "after"));
    let response = post(&server).await;
    let mut body = response.bytes_stream();
    let first = body.next().await.expect("a chunk").expect("ok chunk");
    assert!(String::from_utf8_lossy(&first).contains("response.created"));
    let next = tokio::time::timeout(Duration::from_millis(300), body.next()).await;
    assert!(
        next.is_err(),
        "hanging stream must not end or send more: {next:?}"
    );
    drop(body);
    // The server is still usable after the client walked away.
    let events = parse_sse(&post(&server).await.text().await.unwrap());
    assert_eq!(events.last().unwrap().0, "response.completed");
}

#[tokio::test]
async fn keepalive_comments_are_interleaved() {
    let server = MockResponsesServer::start().await;
    server.set_keepalive_comments(true);
    server.enqueue_stream(sse::text_turn_whole("msg_1", "x"));
    let text = post(&server).await.text().await.unwrap();
    assert_eq!(text.matches(": keepalive\n\n").count(), 3, "{text}");
    assert_eq!(parse_sse(&text).len(), 3);
}

#[tokio::test]
async fn wait_for_requests_wakes_on_arrival() {
    let server = MockResponsesServer::start().await;
    server.enqueue_stream(sse::text_turn_whole("m1", "a"));
    server.enqueue_stream(sse::text_turn_whole("m2", "b"));
    let url = format!("{}/responses", server.base_url());
    let client = tokio::spawn(async move {
        let client = reqwest::Client::new();
        for _ in 0..2 {
            client
                .post(&url)
                .json(&json!({"n": 1}))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
        }
    });
    let requests = server.wait_for_requests(2, WAIT).await;
    assert_eq!(requests.len(), 2);
    client.await.unwrap();
}

#[tokio::test]
#[should_panic(expected = "expected 1 request(s)")]
async fn wait_for_requests_panics_clearly_on_deadline() {
    let server = MockResponsesServer::start().await;
    server.wait_for_requests(1, Duration::from_millis(50)).await;
}

#[tokio::test]
async fn drop_stops_the_server_and_ends_hanging_streams() {
    let server = MockResponsesServer::start().await;
    server.enqueue(MockReply::StreamThenHang(vec![sse::created("resp_1")]));
    let addr = server.addr();
    let response = post(&server).await;
    drop(server);
    // The hanging body ends once the server is gone.
    let ended = tokio::time::timeout(WAIT, response.text()).await;
    assert!(ended.is_ok(), "hanging stream outlived the server");
    let refused = tokio::time::timeout(WAIT, async {
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(refused.is_ok(), "listener still accepting after drop");
}

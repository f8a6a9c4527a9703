//! Every endpoint that reads a body gives up on a sender that stalls: 408 after the body deadline
//! (30 s), so connections that trickle bodies cannot pile up (task registration needs no token).
//! A sender that trickles its headers is cut off too (30 s, `tally_http_serve`).

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends the headers of a POST announcing a 100-byte body, then a few bytes of it, then nothing;
/// the answer as text (the test's clock is paused, so the deadline passes without waiting).
async fn stall(c: &Running, path: &str, extra_header: &str) -> String {
    let mut stream = TcpStream::connect(c.handle.local_addr()).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n{extra_header}\r\n{{\"time"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = async {
        let mut chunk = [0u8; 1024];
        while !String::from_utf8_lossy(&answer).contains("body_timeout") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
    };
    // Well past the deadline: without one, the endpoint waits for the body for ever.
    let answered = tokio::time::timeout(Duration::from_secs(120), read).await;
    assert!(
        answered.is_ok(),
        "{path}: no answer 120 s after the body stalled"
    );
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(start_paused = true)]
async fn a_body_that_stalls_is_answered_408_on_every_endpoint_that_reads_one() {
    let c = running().await;
    let bearer = format!("Authorization: Bearer {TOKEN}\r\n");
    let runtime = format!("rt_{}", "0".repeat(32));
    for (path, header) in [
        (INGEST.to_owned(), bearer.as_str()),
        (
            format!("/api/accounts/v1/agent/{runtime}/task/register"),
            "",
        ),
        (
            "/api/accounts/v1/agent/register".to_owned(),
            bearer.as_str(),
        ),
        ("/backend-api/ps/mcp".to_owned(), ""),
        ("/ps/mcp".to_owned(), ""),
    ] {
        let answer = stall(&c, &path, header).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(
            answer.contains("\"error\":\"body_timeout\""),
            "{path}: {answer}"
        );
    }
    c.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_registration_body_over_64_kib_is_refused_413() {
    let c = running().await;
    let runtime = format!("rt_{}", "0".repeat(32));
    let big = format!("{{\"timestamp\": \"{}\"}}", "x".repeat(100 * 1024));
    let response = c
        .http
        .post(c.url(&format!("/api/accounts/v1/agent/{runtime}/task/register")))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "body_too_large");
    c.handle.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_never_finishes_its_headers_is_disconnected() {
    let c = running().await;
    let mut stream = TcpStream::connect(c.handle.local_addr()).await.unwrap();
    stream
        .write_all(b"POST /codex/analytics-events/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(120), stream.read_to_end(&mut answer)).await;
    assert!(closed.is_ok(), "the connection was still open 120 s later");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    c.handle.shutdown().await.unwrap();
}

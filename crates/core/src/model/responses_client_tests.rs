use super::*;

fn ev(event: &str, data: serde_json::Value) -> SseEvent {
    SseEvent {
        event: event.into(),
        data: data.to_string(),
    }
}

#[test]
fn decodes_completed_usage_into_protocol_names() {
    let got = decode_event(&ev(
        "response.completed",
        serde_json::json!({"response": {"id": "r1", "usage": {
            "input_tokens": 10, "input_tokens_details": {"cached_tokens": 3},
            "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 2},
            "total_tokens": 15}}}),
    ));
    let Some(Ok(ResponseEvent::Completed {
        response_id,
        usage: Some(u),
    })) = got
    else {
        panic!("unexpected {got:?}")
    };
    assert_eq!(response_id, "r1");
    assert_eq!(
        (u.input_tokens, u.cached_input_tokens, u.output_tokens),
        (10, 3, 5)
    );
    assert_eq!((u.reasoning_output_tokens, u.total_tokens), (2, 15));
}

#[test]
fn unknown_events_are_skipped_and_failures_are_errors() {
    assert!(decode_event(&ev("response.in_progress", serde_json::json!({}))).is_none());
    let got = decode_event(&ev(
        "response.failed",
        serde_json::json!({"response": {"error": {"message": "boom"}}}),
    ));
    assert!(matches!(got, Some(Err(ModelError::ResponseFailed(m))) if m == "boom"));
}

#[test]
fn decodes_whole_message_items() {
    let got = decode_event(&ev(
        "response.output_item.done",
        serde_json::json!({"item": {"type": "message", "id": "msg_1", "role": "assistant",
            "content": [{"type": "output_text", "text": "Done."}]}}),
    ));
    let Some(Ok(ResponseEvent::OutputItemDone(item))) = got else {
        panic!("{got:?}")
    };
    assert_eq!(item.message_text().as_deref(), Some("Done."));
}

/// A Responses provider at `addr` with one retry and a short idle deadline.
fn provider_at(addr: std::net::SocketAddr, retries: u32) -> ModelProviderInfo {
    ModelProviderInfo {
        id: "test".into(),
        name: "test".into(),
        kind: ProviderKind::Responses {
            base_url: format!("http://{addr}/v1"),
            env_key: None,
            requires_openai_auth: false,
        },
        request_max_retries: retries,
        stream_max_retries: 0,
        stream_idle_timeout: Duration::from_millis(300),
    }
}

fn request() -> crate::model::ModelRequest {
    crate::model::ModelRequest {
        model: "m".into(),
        prefix: vec![],
        input: vec![],
        tools: vec![],
        reasoning_effort: None,
        output_schema: None,
        metadata: Default::default(),
    }
}

/// A backend that answers each connection with `answer` (nothing at all when `None`), counting
/// connections.
async fn backend(
    answer: Option<&'static [u8]>,
    endless_body: bool,
) -> (std::net::SocketAddr, std::sync::Arc<AtomicU32>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    let connections = std::sync::Arc::new(AtomicU32::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut buf).await;
                if let Some(head) = answer {
                    let _ = socket.write_all(head).await;
                    let chunk = format!("{:x}\r\n{}\r\n", 8192, "x".repeat(8192));
                    while endless_body && socket.write_all(chunk.as_bytes()).await.is_ok() {}
                }
                // Hold the connection open, answering nothing more.
                let _ = socket.read(&mut buf).await;
            });
        }
    });
    (addr, connections)
}

#[tokio::test]
async fn a_backend_that_never_answers_is_an_idle_timeout_and_retried() {
    let (addr, connections) = backend(None, false).await;
    let client = ResponsesClient::new(provider_at(addr, 1));
    let got = tokio::time::timeout(Duration::from_secs(20), client.stream(request()))
        .await
        .unwrap_or_else(|_| panic!("the request waited past every deadline"));
    assert!(
        matches!(got, Err(ModelError::IdleTimeout(d)) if d == Duration::from_millis(300)),
        "{:?}",
        got.err()
    );
    assert_eq!(
        connections.load(Ordering::SeqCst),
        2,
        "sent, then retried once"
    );
}

#[tokio::test]
async fn an_endless_error_body_is_read_only_in_part() {
    let head: &[u8] =
        b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n";
    let (addr, _) = backend(Some(head), true).await;
    let client = ResponsesClient::new(provider_at(addr, 0));
    let got = tokio::time::timeout(Duration::from_secs(20), client.stream(request()))
        .await
        .unwrap_or_else(|_| panic!("the error body was read without end"));
    let Err(ModelError::Http {
        status, message, ..
    }) = got
    else {
        panic!("expected an HTTP error")
    };
    assert_eq!(status, 400);
    assert!(message.len() <= MAX_ERROR_BODY, "{}", message.len());
}

/// A manager logged in with ChatGPT tokens (the access token is `chatgpt-login-token`).
fn chatgpt_login(home: &std::path::Path) -> std::sync::Arc<tally_auth::AuthManager> {
    let auth = serde_json::json!({"tokens": {"id_token": "", "access_token": "chatgpt-login-token",
        "refresh_token": "r", "account_id": "acct-1"}});
    std::fs::write(home.join("auth.json"), auth.to_string())
        .unwrap_or_else(|e| panic!("auth.json: {e}"));
    tally_auth::AuthManager::load(tally_auth::AuthConfig {
        home: home.to_path_buf(),
        env_api_key: None,
        agent_identity: None,
    })
    .unwrap_or_else(|e| panic!("load: {e}"))
}

#[tokio::test]
async fn only_a_provider_that_requires_the_openai_login_receives_it() {
    let home = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let auth = chatgpt_login(home.path());
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], 9).into();
    // A third-party provider naming OPENAI_API_KEY (the usual way to point Codex elsewhere).
    let mut third_party = provider_at(addr, 0);
    third_party.kind = ProviderKind::Responses {
        base_url: "https://llm.example.net/v1".into(),
        env_key: Some("TALLY_TEST_UNSET_KEY_4417".into()),
        requires_openai_auth: false,
    };
    let client = ResponsesClient::new(third_party).with_auth(Some(auth.clone()));
    let got = client
        .auth_headers(Some("TALLY_TEST_UNSET_KEY_4417"), "thread-1")
        .await;
    assert!(
        matches!(&got, Err(ModelError::MissingCredentials(var)) if var == "TALLY_TEST_UNSET_KEY_4417"),
        "the login must not stand in for the provider's key: {got:?}"
    );
    let mut openai = provider_at(addr, 0);
    openai.kind = ProviderKind::Responses {
        base_url: "https://api.openai.com/v1".into(),
        env_key: Some("OPENAI_API_KEY".into()),
        requires_openai_auth: true,
    };
    let client = ResponsesClient::new(openai).with_auth(Some(auth));
    let headers = client
        .auth_headers(Some("OPENAI_API_KEY"), "thread-1")
        .await
        .unwrap_or_else(|e| panic!("login headers: {e}"));
    let authorization = headers
        .iter()
        .find(|(name, _)| *name == reqwest::header::AUTHORIZATION)
        .and_then(|(_, v)| v.to_str().ok())
        .unwrap_or_default();
    assert_eq!(authorization, "Bearer chatgpt-login-token");
}

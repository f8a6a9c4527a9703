//! `account/read`, `account/login/start`, `account/logout`, `account/updated`, and refreshing
//! client-owned ChatGPT tokens through `account/chatgptAuthTokens/refresh`.

use crate::common::*;
use base64::Engine;
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tally_test_support::{sse, MockReply, MockResponsesServer, SchemaMode};

fn jwt_expiring_in(secs: u64, plan: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = json!({
        "exp": now + secs,
        "https://api.openai.com/auth": {"chatgpt_plan_type": plan},
    });
    format!("{}.{}.sig", e.encode(b"{}"), e.encode(payload.to_string()))
}

/// A home whose mock provider uses the OpenAI login (so `AuthManager` authorizes its requests).
fn openai_login_home(mock: &MockResponsesServer) -> tempfile::TempDir {
    let home = home_for(mock, 0);
    let path = home.path().join("config.toml");
    let text = std::fs::read_to_string(&path).expect("config").replace(
        "wire_api = \"responses\"",
        "wire_api = \"responses\"\nenv_key = \"OPENAI_API_KEY\"\nrequires_openai_auth = true",
    );
    std::fs::write(&path, text).expect("config");
    home
}

#[tokio::test]
async fn api_key_login_read_and_logout_notify_every_client() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 0);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;

    let empty = client
        .call(
            "account/login/start",
            json!({"type": "apiKey", "apiKey": "  "}),
        )
        .await;
    assert_eq!(empty["error"]["code"], -32602, "{empty}");

    let login = client
        .call_ok(
            "account/login/start",
            json!({"type": "apiKey", "apiKey": "sk-login-test"}),
        )
        .await;
    assert_eq!(login, json!({"type": "apiKey"}));
    let updated = client.notification("account/updated").await;
    assert_eq!(updated["params"]["authMode"], "apikey");
    let saved = std::fs::read_to_string(home.path().join("auth.json")).expect("auth.json");
    assert!(saved.contains("sk-login-test"));

    let read = client
        .call_ok("account/read", json!({"refreshToken": false}))
        .await;
    assert_eq!(read["account"], json!({"type": "apiKey"}));

    let logout = client.call_ok("account/logout", json!(null)).await;
    assert_eq!(logout, json!({}));
    let updated = client.notification("account/updated").await;
    assert!(!home.path().join("auth.json").exists());
    if std::env::var_os("OPENAI_API_KEY").is_none() {
        assert_eq!(updated["params"]["authMode"], serde_json::Value::Null);
        let read = client.call_ok("account/read", json!({})).await;
        assert_eq!(read["account"], serde_json::Value::Null);
    }
}

#[tokio::test]
async fn expiring_client_tokens_are_refreshed_by_asking_the_client() {
    let mock = MockResponsesServer::start().await;
    let home = openai_login_home(&mock);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    let thread_id = start_thread(&mut client).await;

    let login = client
        .call_ok(
            "account/login/start",
            json!({"type": "chatgptAuthTokens", "accessToken": jwt_expiring_in(30, "plus"),
                   "chatgptAccountId": "account-123", "chatgptPlanType": "plus"}),
        )
        .await;
    assert_eq!(login, json!({"type": "chatgptAuthTokens"}));
    let updated = client.notification("account/updated").await;
    assert_eq!(updated["params"]["authMode"], "chatgptAuthTokens");

    mock.enqueue_stream(sse::text_turn_streamed("msg_1", &["hello"]));
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": [{"type": "text", "text": "hi", "text_elements": []}]}),
        )
        .await;
    // The token expires within the refresh margin: the server asks the client first.
    let refresh = client
        .wait_for(|m| m["method"] == "account/chatgptAuthTokens/refresh" && m.get("id").is_some())
        .await;
    assert_eq!(refresh["params"]["previousAccountId"], "account-123");
    let fresh = jwt_expiring_in(3600, "pro");
    client
        .send(json!({"id": refresh["id"], "result": {
            "accessToken": fresh, "chatgptAccountId": "account-123", "chatgptPlanType": "pro"}}))
        .await;
    client.notification("turn/completed").await;
    let requests = mock.wait_for_requests(1, Duration::from_secs(5)).await;
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {fresh}").as_str())
    );
    assert_eq!(
        requests[0].header("chatgpt-account-id"),
        Some("account-123")
    );
    let read = client.call_ok("account/read", json!({})).await;
    assert_eq!(read["account"]["planType"], "pro");
    // Client-owned tokens never reach disk.
    assert!(!home.path().join("auth.json").exists());
}

#[tokio::test]
async fn a_refused_token_is_refreshed_through_the_client_and_the_request_sent_again() {
    let mock = MockResponsesServer::start().await;
    let home = openai_login_home(&mock);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    let thread_id = start_thread(&mut client).await;
    let stale = jwt_expiring_in(3600, "plus");
    client
        .call_ok(
            "account/login/start",
            json!({"type": "chatgptAuthTokens", "accessToken": stale, "chatgptAccountId": "account-123"}),
        )
        .await;
    mock.enqueue(MockReply::error(401, "token revoked"));
    mock.enqueue_stream(sse::text_turn_streamed("msg_1", &["hello"]));
    client
        .call_ok(
            "turn/start",
            json!({"threadId": thread_id, "input": [{"type": "text", "text": "hi", "text_elements": []}]}),
        )
        .await;
    let refresh = client
        .wait_for(|m| m["method"] == "account/chatgptAuthTokens/refresh" && m.get("id").is_some())
        .await;
    assert_eq!(refresh["params"]["reason"], "unauthorized");
    let fresh = jwt_expiring_in(7200, "plus");
    client
        .send(json!({"id": refresh["id"], "result": {"accessToken": fresh, "chatgptAccountId": "account-123"}}))
        .await;
    client.notification("turn/completed").await;
    let requests = mock.wait_for_requests(2, Duration::from_secs(5)).await;
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {stale}").as_str())
    );
    assert_eq!(
        requests[1].header("authorization"),
        Some(format!("Bearer {fresh}").as_str())
    );
}

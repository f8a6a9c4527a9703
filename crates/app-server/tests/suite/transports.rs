//! The Unix-socket transport and WebSocket upgrade auth, end to end with schema-checked clients.

use crate::common;

use serde_json::json;
use std::time::Duration;
use tally_app_server::transport::unix::ControlSocket;
use tally_app_server::transport::ws_auth::{sign_hs256, WsAuth};
use tally_test_support::{AppClient, MockResponsesServer, SchemaMode};
use tokio_tungstenite::tungstenite;

const DEADLINE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn unix_socket_serves_a_session_over_a_normal_upgrade_and_is_removed_at_shutdown() {
    let mock = MockResponsesServer::start().await;
    let home = common::home_for(&mock, 1);
    let server = common::server(&home);
    let path = tally_app_server::transport::unix::default_socket_path(home.path());
    let socket = ControlSocket::bind(&path).expect("bind control socket");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = {
        let server = server.clone();
        tokio::spawn(async move {
            server
                .run_unix(socket, None, async {
                    let _ = stopped.await;
                })
                .await
        })
    };

    let mut client = AppClient::over_unix_socket(&path, SchemaMode::Stable).await;
    let thread_id = common::start_thread(&mut client).await;
    let loaded = client.call_ok("thread/loaded/list", json!({})).await;
    assert_eq!(loaded["data"], json!([thread_id]));
    client.close();

    let _ = stop.send(());
    tokio::time::timeout(DEADLINE, serving)
        .await
        .expect("the listener stops within the deadline")
        .expect("serve task")
        .expect("served");
    assert!(!path.exists(), "the socket file is removed at shutdown");
}

/// Serves WebSocket with `auth` on a loopback port; returns the URL.
async fn websocket_with_auth(
    server: &std::sync::Arc<tally_app_server::AppServer>,
    auth: WsAuth,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = server.clone();
    tokio::spawn(async move {
        server
            .run_websocket_with_auth(listener, Some(auth), std::future::pending())
            .await
    });
    format!("ws://{addr}")
}

/// Attempts an upgrade and returns the HTTP status and body of a refusal.
async fn refused(request: tungstenite::handshake::client::Request) -> (u16, String) {
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => panic!("the upgrade was accepted"),
        Err(tungstenite::Error::Http(response)) => (
            response.status().as_u16(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).to_string(),
        ),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn plain_request(url: &str) -> tungstenite::handshake::client::Request {
    use tungstenite::client::IntoClientRequest;
    url.into_client_request().expect("request")
}

#[tokio::test]
async fn capability_token_is_checked_before_any_json_rpc() {
    let mock = MockResponsesServer::start().await;
    let home = common::home_for(&mock, 1);
    let token_file = home.path().join("ws-token");
    std::fs::write(&token_file, "correct-horse\n").expect("write token");
    let server = common::server(&home);
    let url = websocket_with_auth(
        &server,
        WsAuth::capability_token_file(&token_file).expect("auth"),
    )
    .await;

    let (status, body) = refused(plain_request(&url)).await;
    assert_eq!(status, 401);
    assert!(body.contains("missing Authorization"), "{body}");
    let (status, body) = refused(tally_test_support::app_client::bearer_request(
        &url,
        "wrong-horse",
    ))
    .await;
    assert_eq!(status, 401);
    assert!(body.contains("invalid bearer token"), "{body}");
    assert!(
        !body.contains("horse"),
        "the body never echoes a token: {body}"
    );

    let mut client =
        AppClient::over_websocket_with_bearer(&url, "correct-horse", SchemaMode::Stable).await;
    common::start_thread(&mut client).await;
}

#[tokio::test]
async fn signed_bearer_token_accepts_a_valid_jwt_and_refuses_an_expired_one() {
    let mock = MockResponsesServer::start().await;
    let home = common::home_for(&mock, 1);
    let secret_file = home.path().join("ws-secret");
    std::fs::write(&secret_file, "hmac-secret").expect("write secret");
    let server = common::server(&home);
    let auth = WsAuth::signed_bearer_file(
        &secret_file,
        Some("tally-tests".into()),
        Some("app-server".into()),
        Duration::from_secs(5),
    )
    .expect("auth");
    let url = websocket_with_auth(&server, auth).await;
    let now = tally_core::clock::now_secs();

    let expired = sign_hs256(
        b"hmac-secret",
        &json!({"exp": now - 60, "iss": "tally-tests", "aud": "app-server"}),
    );
    let (status, body) = refused(tally_test_support::app_client::bearer_request(
        &url, &expired,
    ))
    .await;
    assert_eq!(
        (status, body.as_str()),
        (401, "signed bearer token: expired")
    );

    let valid = sign_hs256(
        b"hmac-secret",
        &json!({"exp": now + 60, "iss": "tally-tests", "aud": "app-server"}),
    );
    let mut client = AppClient::over_websocket_with_bearer(&url, &valid, SchemaMode::Stable).await;
    common::start_thread(&mut client).await;
}

//! Shared setup for app-server integration tests: a home with config, the server, and clients.

#![allow(dead_code)]

use std::sync::Arc;
use tally_app_server::{AppServer, AppServerOptions};
use tally_core::Config;
use tally_test_support::{AppClient, MockResponsesServer, SchemaMode};
use tempfile::TempDir;

/// A home whose config points the model at `mock`.
pub fn home_for(mock: &MockResponsesServer, stream_max_retries: u32) -> TempDir {
    let home = tempfile::tempdir().expect("tempdir");
    let config = format!(
        r#"model = "gpt-test"
model_provider = "mock"

[model_providers.mock]
name = "Mock"
base_url = "{}"
wire_api = "responses"
request_max_retries = 2
stream_max_retries = {stream_max_retries}
stream_idle_timeout_ms = 5000
"#,
        mock.base_url()
    );
    std::fs::write(home.path().join("config.toml"), config).expect("write config");
    home
}

/// A home like [`home_for`] whose analytics go to a collector at `collector_url`.
pub fn home_with_analytics(mock: &MockResponsesServer, collector_url: &str) -> TempDir {
    let home = home_for(mock, 1);
    add_config(
        &home,
        "",
        &format!("\n[analytics]\nenabled = true\ncollector_url = \"{collector_url}\"\n"),
    );
    home
}

/// Adds to `home`'s config.toml: `top` before everything (top-level keys must precede the
/// tables), `tail` after it (tables).
pub fn add_config(home: &TempDir, top: &str, tail: &str) {
    let path = home.path().join("config.toml");
    let text = std::fs::read_to_string(&path).expect("read config");
    std::fs::write(&path, format!("{top}{text}{tail}")).expect("write config");
}

/// A home on the offline model with `settings` (top-level config keys) whose analytics go to
/// `collector_url`.
pub fn offline_home_with_analytics(settings: &str, collector_url: &str) -> TempDir {
    let home = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "model_provider = \"tally-offline\"\n{settings}\n[analytics]\ncollector_url = \"{collector_url}\"\n"
    );
    std::fs::write(home.path().join("config.toml"), config).expect("write config");
    home
}

/// A server for `home`.
pub fn server(home: &TempDir) -> Arc<AppServer> {
    let config = Config::load(home.path()).expect("config loads");
    Arc::new(AppServer::new(config, AppServerOptions::default()))
}

/// A client on the line transport (what stdio runs), in process.
pub fn line_client(server: &Arc<AppServer>, mode: SchemaMode) -> AppClient {
    let (client_side, server_side) = tokio::io::duplex(1 << 20);
    let (server_read, server_write) = tokio::io::split(server_side);
    let (client_read, client_write) = tokio::io::split(client_side);
    let server = server.clone();
    tokio::spawn(async move {
        server
            .run_lines(tokio::io::BufReader::new(server_read), server_write)
            .await
    });
    AppClient::over_lines(client_read, client_write, mode)
}

/// Starts the WebSocket listener and returns its `ws://` URL.
pub async fn websocket_url(server: &Arc<AppServer>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = server.clone();
    tokio::spawn(async move { server.run_websocket(listener, std::future::pending()).await });
    format!("ws://{addr}")
}

/// Initializes and starts a thread; returns the thread id.
pub async fn start_thread(client: &mut AppClient) -> String {
    client.initialize(false).await;
    start_thread_in(client, std::path::Path::new("/tmp")).await
}

/// Starts a thread in `cwd` on an initialized client, waits for `thread/started`, and returns the
/// thread id.
pub async fn start_thread_in(client: &mut AppClient, cwd: &std::path::Path) -> String {
    let result = client
        .call_ok(
            "thread/start",
            serde_json::json!({"cwd": cwd.display().to_string()}),
        )
        .await;
    client.notification("thread/started").await;
    result["thread"]["id"]
        .as_str()
        .expect("thread id")
        .to_string()
}

//! What the Codex 0.169 TUI sends when `codex --remote` connects, replayed as it sent it
//! (`fixtures/tui_0169_startup.json`, captured between the real TUI and `tally serve` with a
//! logging WebSocket proxy; `{cwd}` and `{thread}` stand for the TUI's directory and the thread
//! it started). Every request it makes gets an answer the schema accepts, except the two Tally
//! does not serve (the TUI carries on without them).

use serde_json::Value;
use tally_test_support::{AppClient, MockResponsesServer, SchemaMode};

use crate::common::{home_for, server, websocket_url};

/// Methods the TUI calls that Tally answers with "method not found": a collaboration-mode list
/// would promise modes (Plan) Tally does not run, and it has no Bedrock provider.
const NOT_SERVED: [&str; 2] = [
    "collaborationMode/list",
    "account/bedrock/checkGovCloudRequirements",
];

fn startup_messages(cwd: &str) -> Vec<Value> {
    let text = include_str!("fixtures/tui_0169_startup.json").replace("{cwd}", cwd);
    serde_json::from_str(&text).expect("the fixture is JSON")
}

#[tokio::test]
async fn every_request_of_the_tui_start_up_is_answered() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 0);
    let cwd = tempfile::tempdir().expect("cwd");
    let server = server(&home);
    let url = websocket_url(&server).await;
    let mut client = AppClient::over_websocket(&url, SchemaMode::Experimental).await;
    let mut thread = String::new();
    for message in startup_messages(&cwd.path().display().to_string()) {
        let method = message["method"].as_str().unwrap_or_default().to_owned();
        let Some(params) = message.get("params") else {
            client.send(message).await;
            continue;
        };
        let params: Value = serde_json::from_str(&params.to_string().replace("{thread}", &thread))
            .expect("params stay JSON");
        let answer = client.call(&method, params).await;
        if NOT_SERVED.contains(&method.as_str()) {
            assert_eq!(answer["error"]["code"], -32601, "{method}: {answer}");
            continue;
        }
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        if method == "thread/start" {
            thread = answer["result"]["thread"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
        }
        if method == "plugin/installed" {
            assert_eq!(answer["result"]["marketplaces"], serde_json::json!([]));
        }
    }
    assert!(!thread.is_empty(), "the TUI's thread/start was answered");
}

/// The TUI's `/mcp` asks for the MCP inventory; Tally runs no MCP servers and says so with an
/// empty list (an error made the TUI print "Failed to load MCP inventory").
#[tokio::test]
async fn the_mcp_inventory_is_empty() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 0);
    let server = server(&home);
    let url = websocket_url(&server).await;
    let mut client = AppClient::over_websocket(&url, SchemaMode::Experimental).await;
    client.initialize(true).await;
    for params in [
        serde_json::json!({}),
        serde_json::json!({"detail": "toolsAndAuthOnly", "threadId": null, "limit": 50}),
    ] {
        let answer = client.call_ok("mcpServerStatus/list", params).await;
        assert_eq!(answer["data"], serde_json::json!([]));
        assert_eq!(answer["nextCursor"], Value::Null);
    }
}

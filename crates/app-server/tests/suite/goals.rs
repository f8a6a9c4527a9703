//! `thread/goal/*` end to end: set, get and clear round trip with their notifications (validated
//! against the schema by the client), bad params, and the goal snapshot after `thread/resume`,
//! also after a restart.

use crate::common::*;
use serde_json::{json, Value};
use tally_test_support::{methods, AppClient, MockResponsesServer, SchemaMode};

async fn answer_then_notification(
    client: &mut AppClient,
    method: &str,
    params: Value,
    notification: &str,
) -> (Value, Value) {
    let id = client.request(method, params).await;
    let answer = client.answer_to(&id).await;
    assert!(answer.get("error").is_none(), "{method} failed: {answer}");
    let next = client.next().await;
    assert_eq!(next["method"], notification, "{next}");
    (answer["result"].clone(), next["params"].clone())
}

#[tokio::test]
async fn goals_round_trip_through_set_get_and_clear() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    let thread_id = start_thread(&mut client).await;

    let none = client
        .call_ok("thread/goal/get", json!({"threadId": thread_id}))
        .await;
    assert_eq!(none, json!({"goal": null}));

    let (set, updated) = answer_then_notification(
        &mut client,
        "thread/goal/set",
        json!({"threadId": thread_id, "objective": "ship the parser", "tokenBudget": 5000, "origin": "user"}),
        "thread/goal/updated",
    )
    .await;
    let goal = &set["goal"];
    assert_eq!(goal["threadId"], thread_id.as_str());
    assert_eq!(goal["objective"], "ship the parser");
    assert_eq!(goal["status"], "active");
    assert_eq!(goal["tokenBudget"], 5000);
    assert_eq!(goal["tokensUsed"], 0);
    assert_eq!(goal["timeUsedSeconds"], 0);
    assert!(goal["createdAt"].is_i64() && goal["updatedAt"].is_i64());
    assert_eq!(
        updated,
        json!({"threadId": thread_id, "turnId": null, "goal": goal.clone()})
    );

    // Without an objective, the status of the same goal changes.
    let (paused, _) = answer_then_notification(
        &mut client,
        "thread/goal/set",
        json!({"threadId": thread_id, "status": "paused"}),
        "thread/goal/updated",
    )
    .await;
    assert_eq!(paused["goal"]["status"], "paused");
    assert_eq!(paused["goal"]["objective"], "ship the parser");
    assert_eq!(paused["goal"]["createdAt"], goal["createdAt"]);
    let got = client
        .call_ok("thread/goal/get", json!({"threadId": thread_id}))
        .await;
    assert_eq!(got["goal"], paused["goal"]);

    let (cleared, note) = answer_then_notification(
        &mut client,
        "thread/goal/clear",
        json!({"threadId": thread_id}),
        "thread/goal/cleared",
    )
    .await;
    assert_eq!(cleared, json!({"cleared": true}));
    assert_eq!(note, json!({"threadId": thread_id}));
    let again = client
        .call_ok("thread/goal/clear", json!({"threadId": thread_id}))
        .await;
    assert_eq!(again, json!({"cleared": false}));
    let none = client
        .call_ok("thread/goal/get", json!({"threadId": thread_id}))
        .await;
    assert_eq!(none["goal"], Value::Null);
}

#[tokio::test]
async fn bad_goal_params_are_rejected_naming_the_field() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    let thread_id = start_thread(&mut client).await;
    for (params, field) in [
        (
            json!({"threadId": thread_id, "status": "finished"}),
            "status",
        ),
        (json!({"threadId": thread_id, "objective": 3}), "objective"),
        (
            json!({"threadId": thread_id, "objective": "  "}),
            "objective",
        ),
        (
            json!({"threadId": thread_id, "status": "paused"}),
            "objective",
        ),
        (
            json!({"threadId": thread_id, "objective": "x", "tokenBudget": -1}),
            "tokenBudget",
        ),
        (json!({"objective": "x"}), "threadId"),
    ] {
        let answer = client.call("thread/goal/set", params.clone()).await;
        assert_eq!(answer["error"]["code"], -32602, "{params}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{params}: {message}");
    }
    let unknown = client
        .call(
            "thread/goal/set",
            json!({"threadId": "0196f0a4-6f5e-7a1b-9c2d-3e4f5a6b7c8d", "objective": "x"}),
        )
        .await;
    assert_eq!(unknown["error"]["code"], -32600);
    assert!(unknown["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("thread not found")));
    let invalid = client
        .call("thread/goal/get", json!({"threadId": "not-a-uuid"}))
        .await;
    assert_eq!(invalid["error"]["code"], -32600);
    assert!(invalid["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("invalid thread id")));
}

#[tokio::test]
async fn resume_sends_the_goal_snapshot_after_the_response_also_after_a_restart() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let (with_goal, without_goal);
    {
        let server = server(&home);
        let mut client = line_client(&server, SchemaMode::Stable);
        with_goal = start_thread(&mut client).await;
        client
            .call_ok(
                "thread/goal/set",
                json!({"threadId": with_goal, "objective": "keep it fast", "status": "blocked"}),
            )
            .await;
        client.notification("thread/goal/updated").await;
        let started = client.call_ok("thread/start", json!({"cwd": "/tmp"})).await;
        without_goal = started["thread"]["id"].as_str().expect("id").to_string();

        // Resume on the live server: response, then the snapshot.
        let id = client
            .request(
                "thread/resume",
                json!({"threadId": with_goal, "excludeTurns": true}),
            )
            .await;
        let answer = client.answer_to(&id).await;
        assert!(answer.get("error").is_none(), "{answer}");
        let snapshot = client
            .wait_for(|m| {
                m["method"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("thread/goal/"))
            })
            .await;
        assert_eq!(snapshot["method"], "thread/goal/updated");
        assert_eq!(snapshot["params"]["goal"]["status"], "blocked");
    }
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let id = client
        .request(
            "thread/resume",
            json!({"threadId": with_goal, "excludeTurns": true}),
        )
        .await;
    let mut seen = vec![];
    loop {
        let m = client.next().await;
        let done = m["method"] == "thread/goal/updated";
        // A sandbox warning may follow `initialize` on kernels without Landlock.
        if m["method"] != "configWarning" {
            seen.push(m);
        }
        if done {
            break;
        }
    }
    assert_eq!(
        methods(&seen),
        ["thread/status/changed", "response", "thread/goal/updated"]
    );
    assert_eq!(seen[1]["id"], id);
    let goal = &seen[2]["params"];
    assert_eq!(goal["threadId"], with_goal.as_str());
    assert_eq!(goal["turnId"], Value::Null);
    assert_eq!(goal["goal"]["objective"], "keep it fast");
    assert_eq!(goal["goal"]["status"], "blocked");
    // The goal reads back from disk without a resume, and after it.
    assert_eq!(
        client
            .call_ok("thread/goal/get", json!({"threadId": with_goal}))
            .await["goal"]["objective"],
        "keep it fast"
    );

    let id = client
        .request(
            "thread/resume",
            json!({"threadId": without_goal, "excludeTurns": true}),
        )
        .await;
    client.answer_to(&id).await;
    let snapshot = client
        .wait_for(|m| {
            m["method"]
                .as_str()
                .is_some_and(|m| m.starts_with("thread/goal/"))
        })
        .await;
    assert_eq!(snapshot["method"], "thread/goal/cleared");
    assert_eq!(snapshot["params"], json!({"threadId": without_goal}));
}

#[tokio::test]
async fn a_goal_of_a_thread_on_disk_needs_a_resume_before_it_changes() {
    let mock = MockResponsesServer::start().await;
    let home = home_for(&mock, 1);
    let thread_id;
    {
        let server = server(&home);
        let mut client = line_client(&server, SchemaMode::Stable);
        thread_id = start_thread(&mut client).await;
    }
    let server = server(&home);
    let mut client = line_client(&server, SchemaMode::Stable);
    client.initialize(false).await;
    let answer = client
        .call(
            "thread/goal/set",
            json!({"threadId": thread_id, "objective": "x"}),
        )
        .await;
    assert_eq!(answer["error"]["code"], -32600);
    assert!(answer["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("thread not loaded")));
}

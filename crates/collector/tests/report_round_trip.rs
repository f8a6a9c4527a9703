//! Tally-shaped events in over HTTP, the numbers a product team reads out of the report.

mod common;

use common::*;
use serde_json::json;
use tally_collector::fixtures::{batch, helper_thread, session, wire_with_id};
use tally_collector::report::Report;

#[tokio::test]
async fn tally_events_round_trip_into_the_report() {
    let c = running().await;
    // Every event falls in one hourly bucket, so the per-bucket session counts below do not
    // depend on the wall clock.
    let start = aligned_start_s();
    // vscode: 2 sessions of 5 turns; tui: 1 session of 2 turns, and the threads the TUI and the
    // server start on their own (a title, a Guardian reviewer), whose turns are not the user's.
    let mut events = Vec::new();
    events.extend(with_ids(session("vscode", 1, 5, start), "a"));
    events.extend(with_ids(session("vscode", 2, 5, start), "b"));
    events.extend(with_ids(session("tui", 3, 2, start), "c"));
    let title = helper_thread("tui", "thr-title", "thr-title", "thread_title", start);
    events.extend(with_ids(title, "d"));
    let reviewer = helper_thread("tui", "thr-g", "thr-3", "guardian_review", start);
    events.extend(with_ids(reviewer, "e"));
    events.push(wire_with_id(
        "tally_analytics_dropped",
        json!({"stage": "queue", "reason": "queue_full", "dropped_event_type": "codex_turn_event",
               "count": 7, "window_start_ms": start * 1000, "window_end_ms": start * 1000 + 60_000}),
        "drop-1",
    ));
    let (status, answer) = c.post(&batch(events)).await;
    assert_eq!(status, 200, "{answer}");

    let report: Report = c
        .http
        .get(c.url("/api/report?since=2d"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t = &report.totals;
    assert_eq!((t.sessions, t.turns, t.tool_calls), (3, 12, 24));
    assert_eq!((t.approvals, t.hook_runs, t.guardian_reviews), (12, 12, 3));
    // Every fifth turn is interrupted and carries no tokens: vscode 2×4 + tui 2 = 10 turns × 1500;
    // the helper threads' tokens count too (2 × 100).
    assert_eq!(t.total_tokens, 15_200);
    let sources: Vec<(&str, u64, u64, u64)> = report
        .thread_sources
        .iter()
        .map(|r| (r.source.as_str(), r.threads, r.turns, r.total_tokens))
        .collect();
    assert_eq!(
        sources,
        vec![
            ("user", 3, 12, 15_000),
            ("guardian_review", 1, 1, 100),
            ("thread_title", 1, 1, 100)
        ]
    );

    let by_client = |client: &str| -> (u64, u64) {
        report
            .timeline
            .iter()
            .filter(|r| r.client == client)
            .fold((0, 0), |acc, r| (acc.0 + r.sessions, acc.1 + r.turns))
    };
    assert_eq!(by_client("vscode"), (2, 10));
    assert_eq!(by_client("tui"), (1, 2));
    let tui_tokens: u64 = report
        .timeline
        .iter()
        .filter(|r| r.client == "tui")
        .map(|r| r.total_tokens)
        .sum();
    assert_eq!(tui_tokens, 2 * 1500 + 200);

    let outcomes: Vec<(&str, u64)> = report
        .turn_outcomes
        .iter()
        .map(|r| (r.status.as_str(), r.count))
        .collect();
    assert_eq!(outcomes, vec![("completed", 10), ("interrupted", 2)]);
    let completed = &report.turn_outcomes[0].duration_ms;
    assert_eq!((completed.p50, completed.p95), (Some(2100), Some(2300)));

    let rejected_commands = report
        .tool_calls
        .iter()
        .find(|r| r.kind == "command_execution" && r.terminal_status == "rejected")
        .unwrap();
    assert_eq!(
        rejected_commands.count, 2,
        "turn 3 of each 5-turn session is denied"
    );

    let approvals = &report.approvals[0];
    assert_eq!(
        (approvals.reviewer.as_str(), approvals.subject_kind.as_str()),
        ("user", "command_execution")
    );
    assert_eq!(
        (approvals.total, approvals.approved, approvals.denied),
        (12, 10, 2)
    );
    assert_eq!(approvals.latency_ms.p50, Some(810));

    assert!(report
        .hook_runs
        .iter()
        .all(|r| r.hook_source == "user" && r.status == "completed"));
    assert_eq!(report.guardian_reviews[0].decision, "denied");
    assert_eq!(report.guardian_reviews[0].failure_reason, "parse_error");
    assert_eq!(report.guardian_reviews[0].count, 3);
    assert!(report
        .top_errors
        .iter()
        .any(|e| e.source == "tool" && e.kind == "approval_denied" && e.count == 2));
    assert_eq!(report.analytics_drops[0].count, 7);
    assert_eq!(report.analytics_drops[0].reason, "queue_full");

    // Filtering by client narrows every number.
    let tui: Report = c
        .http
        .get(c.url("/api/report?since=2d&client=tui"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((tui.totals.sessions, tui.totals.turns), (1, 2));
    // The client list (for the filter) stays complete; the drop report names no client, so it
    // adds none, and an app-server's drops show under every client.
    assert_eq!(report.clients, vec!["tui", "vscode"]);
    assert_eq!(tui.clients, report.clients);
    assert_eq!(tui.analytics_drops, report.analytics_drops);

    // The text rendering carries the same numbers.
    let text = report.to_string();
    assert!(text.contains("sessions 3  turns 12"), "{text}");
    assert!(text.contains("Threads by source"), "{text}");
    assert!(text.contains("parse_error"));

    // A bad range is a 400 naming the parameter.
    let response = c
        .http
        .get(c.url("/api/report?since=forever"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["field"], "since");
    c.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn build_report_reads_the_store_directly() {
    let c = running().await;
    c.post(&batch(with_ids(
        session("vscode", 9, 1, an_hour_ago_s()),
        "d",
    )))
    .await;
    let report = tally_collector::build_report(&*c.store(), std::time::Duration::from_secs(86_400))
        .await
        .unwrap();
    assert_eq!(report.totals.turns, 1);
    assert_eq!(report.bucket_ms, tally_collector::report::HOUR_MS);
    c.handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn token_sums_past_i64_saturate_instead_of_breaking_the_report() {
    // SQLite's SUM() raised "integer overflow" on these, and every report covering the hour
    // answered 503 from then on.
    let c = running().await;
    let start = aligned_start_s();
    let huge = i64::MAX - 1;
    let turn = |client: &str, n: u32| {
        wire_with_id(
            "codex_turn_event",
            json!({"thread_id": format!("thr-{client}-{n}"), "session_id": format!("s-{client}"),
                   "turn_id": format!("turn-{client}-{n}"), "thread_source": "user",
                   "app_server_client": tally_collector::fixtures::app_server_client(client),
                   "model": "gpt-x", "status": "completed", "input_tokens": huge,
                   "cached_input_tokens": huge, "output_tokens": huge,
                   "reasoning_output_tokens": huge, "total_tokens": huge, "duration_ms": huge,
                   "started_at": start, "completed_at": start}),
            &format!("big-{client}-{n}"),
        )
    };
    let drop = |n: u32| {
        wire_with_id(
            "tally_analytics_dropped",
            json!({"stage": "queue", "reason": "queue_full", "count": huge,
                   "window_start_ms": start * 1000, "window_end_ms": start * 1000 + 60_000}),
            &format!("big-drop-{n}"),
        )
    };
    // Two clients in one hour: each bucket saturates, and so does their sum.
    let events = vec![
        turn("vscode", 1),
        turn("vscode", 2),
        turn("vscode", 3),
        turn("tui", 1),
        turn("tui", 2),
        drop(1),
        drop(2),
    ];
    let (status, answer) = c.post(&batch(events)).await;
    assert_eq!(status, 200, "{answer}");

    let response = c
        .http
        .get(c.url("/api/report?since=2d"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let report: Report = response.json().await.unwrap();
    assert_eq!(report.totals.turns, 5);
    assert_eq!(report.totals.total_tokens, u64::MAX);
    assert!(report.timeline.iter().all(|r| r.total_tokens == u64::MAX));
    let tokens = &report.tokens[0];
    assert_eq!(
        (tokens.turns, tokens.input_tokens, tokens.total_tokens),
        (5, u64::MAX, u64::MAX)
    );
    assert_eq!(report.thread_sources[0].total_tokens, u64::MAX);
    assert_eq!(report.analytics_drops[0].count, u64::MAX);
    assert!(report.to_string().contains(&u64::MAX.to_string()));

    let page = c.http.get(c.url("/?since=2d")).send().await.unwrap();
    assert_eq!(page.status(), 200, "{}", page.text().await.unwrap());
    c.handle.shutdown().await.unwrap();
}

use super::*;
use crate::connection::{OutboundPolicy, SessionInfo};
use std::time::Duration;
use tally_protocol::server_notification::ThreadIdNotification;
use tally_protocol::server_request::{FileChangeApprovalDecision, FileChangeRequestApprovalParams};
use tally_protocol::types::EmptyResponse;
use tokio::sync::mpsc;

fn sender() -> OutgoingMessageSender {
    OutgoingMessageSender::new(Arc::new(ConnectionRegistry::default()))
}

fn connect(
    s: &OutgoingMessageSender,
    policy: OutboundPolicy,
    capacity: usize,
) -> (ConnectionId, mpsc::Receiver<Arc<str>>) {
    let (tx, rx) = mpsc::channel(capacity);
    let (id, _closed) = s.registry().register(tx, policy);
    (id, rx)
}

fn frame(rx: &mut mpsc::Receiver<Arc<str>>) -> Value {
    let f = rx.try_recv().expect("a frame was queued");
    serde_json::from_str(&f).expect("frames are JSON")
}

#[tokio::test]
async fn send_response_serializes_the_typed_payload_with_the_request_id() {
    let s = sender();
    let (c, mut rx) = connect(&s, OutboundPolicy::Wait, 8);
    s.send_response(
        c,
        RequestId::String("a-7".into()),
        ClientResponsePayload::TurnInterrupt(EmptyResponse {}),
    )
    .await;
    assert_eq!(frame(&mut rx), json!({"id": "a-7", "result": {}}));
}

#[tokio::test]
async fn thread_notifications_reach_initialized_subscribers_that_did_not_opt_out() {
    let s = sender();
    let (a, mut rx_a) = connect(&s, OutboundPolicy::Wait, 8);
    let (b, mut rx_b) = connect(&s, OutboundPolicy::Wait, 8);
    let (c, mut rx_c) = connect(&s, OutboundPolicy::Wait, 8);
    s.registry().set_session(a, SessionInfo::default());
    let mut opted_out = SessionInfo::default();
    opted_out
        .opt_out_notifications
        .insert("thread/archived".into());
    s.registry().set_session(b, opted_out);
    // c never initialized.
    for id in [a, b, c] {
        s.registry().subscribe(id, "t1");
    }
    let n = ServerNotification::ThreadArchived(ThreadIdNotification {
        thread_id: "t1".into(),
    });
    s.send_thread_notification("t1", &n).await;
    let got = frame(&mut rx_a);
    assert_eq!(got["method"], "thread/archived");
    assert!(got["emittedAtMs"].is_i64(), "{got}");
    assert!(rx_b.try_recv().is_err(), "opted-out connection got it");
    assert!(rx_c.try_recv().is_err(), "uninitialized connection got it");
}

fn approval() -> ServerRequest {
    ServerRequest::FileChangeRequestApproval(FileChangeRequestApprovalParams {
        thread_id: "t".into(),
        turn_id: "u".into(),
        item_id: "call_1".into(),
        started_at_ms: 1,
        reason: None,
        grant_root: None,
    })
}

#[tokio::test]
async fn server_request_answer_is_decoded_and_attributed_to_the_responding_connection() {
    let s = sender();
    let (a, mut rx) = connect(&s, OutboundPolicy::Wait, 8);
    let (id, outcome) = s.send_request(a, approval()).await;
    assert_eq!(id, RequestId::Integer(0));
    let sent = frame(&mut rx);
    assert_eq!(sent["id"], 0);
    assert_eq!(sent["method"], "item/fileChange/requestApproval");
    s.notify_client_response(a, id, json!({"decision": "decline"}));
    let got = outcome.await.expect("settled");
    assert_eq!(
        got,
        ServerRequestOutcome::Answered {
            connection: a,
            response: ServerResponse::FileChangeRequestApproval(
                tally_protocol::server_request::FileChangeRequestApprovalResponse {
                    decision: FileChangeApprovalDecision::Decline
                }
            )
        }
    );
    assert_eq!(s.pending_requests(), 0);
}

#[tokio::test]
async fn answers_from_other_connections_and_malformed_results_leave_the_request_pending() {
    let s = sender();
    let (a, _rx_a) = connect(&s, OutboundPolicy::Wait, 8);
    let (b, _rx_b) = connect(&s, OutboundPolicy::Wait, 8);
    let (id, mut outcome) = s.send_request(a, approval()).await;
    s.notify_client_response(b, id.clone(), json!({"decision": "accept"}));
    s.notify_client_response(a, id.clone(), json!({"nonsense": true}));
    s.notify_client_response(a, RequestId::Integer(999), json!({"decision": "accept"}));
    assert_eq!(s.pending_requests(), 1, "nothing valid answered it yet");
    assert!(outcome.try_recv().is_err());
    assert_eq!(s.request_stats().ignored_answers.load(Ordering::Relaxed), 2);
    assert_eq!(
        s.request_stats().malformed_answers.load(Ordering::Relaxed),
        1
    );
    s.notify_client_response(a, id, json!({"decision": "accept"}));
    let got = outcome.await.expect("settled");
    assert!(
        matches!(got, ServerRequestOutcome::Answered { connection, .. } if connection == a),
        "{got:?}"
    );
}

#[tokio::test]
async fn an_error_answer_refuses_the_request() {
    let s = sender();
    let (a, _rx) = connect(&s, OutboundPolicy::Wait, 8);
    let (id, outcome) = s.send_request(a, approval()).await;
    s.notify_client_error(a, id, JsonRpcErrorBody::internal("no"));
    let got = outcome.await.expect("settled");
    assert!(
        matches!(got, ServerRequestOutcome::Refused { .. }),
        "{got:?}"
    );
}

fn subscribed(s: &OutgoingMessageSender, thread: &str) -> (ConnectionId, mpsc::Receiver<Arc<str>>) {
    let (c, rx) = connect(s, OutboundPolicy::Wait, 64);
    s.registry().set_session(c, SessionInfo::default());
    s.registry().subscribe(c, thread);
    (c, rx)
}

fn frames(rx: &mut mpsc::Receiver<Arc<str>>) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(f) = rx.try_recv() {
        out.push(serde_json::from_str(&f).expect("frames are JSON"));
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_request_whose_connections_all_closed_is_cancelled_at_the_orphan_deadline() {
    let deadlines = RequestDeadlines {
        unanswered: Duration::from_secs(3600),
        orphaned: Duration::from_secs(60),
    };
    let s = Arc::new(sender().with_request_deadlines(deadlines));
    let (a, mut rx_a) = subscribed(&s, "t");
    let waiter = tokio::spawn({
        let s = s.clone();
        async move { s.request_on_thread("t", approval()).await }
    });
    tokio::task::yield_now().await;
    assert_eq!(
        frames(&mut rx_a)[0]["method"],
        "item/fileChange/requestApproval"
    );
    s.registry().unregister(a);
    s.connection_closed(a);
    let started = tokio::time::Instant::now();
    let got = waiter.await.expect("joins");
    assert_eq!(got, ServerRequestOutcome::Cancelled);
    assert!(started.elapsed() >= Duration::from_secs(60));
    assert_eq!(s.pending_requests(), 0);
    assert_eq!(s.request_stats().lapsed.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn a_resume_before_the_orphan_deadline_keeps_the_request_and_replays_it() {
    let deadlines = RequestDeadlines {
        unanswered: Duration::from_secs(3600),
        orphaned: Duration::from_secs(60),
    };
    let s = Arc::new(sender().with_request_deadlines(deadlines));
    let (a, mut rx_a) = subscribed(&s, "t");
    let waiter = tokio::spawn({
        let s = s.clone();
        async move { s.request_on_thread("t", approval()).await }
    });
    tokio::task::yield_now().await;
    let original = frames(&mut rx_a).remove(0);
    s.registry().unregister(a);
    s.connection_closed(a);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let (b, mut rx_b) = subscribed(&s, "t");
    s.replay_pending("t", b).await;
    let replayed = frames(&mut rx_b).remove(0);
    assert_eq!(replayed, original, "same id, same params");
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(s.pending_requests(), 1, "the resumed request did not lapse");
    let id: RequestId = serde_json::from_value(replayed["id"].clone()).expect("id");
    s.notify_client_response(b, id, json!({"decision": "accept"}));
    let got = waiter.await.expect("joins");
    assert!(matches!(got, ServerRequestOutcome::Answered { connection, .. } if connection == b));
    let resolved = frames(&mut rx_b);
    assert_eq!(resolved[0]["method"], "serverRequest/resolved");
}

#[tokio::test]
async fn withdrawing_a_turns_requests_cancels_them_and_tells_subscribers() {
    let s = Arc::new(sender());
    let (_a, mut rx_a) = subscribed(&s, "t");
    let waiter = tokio::spawn({
        let s = s.clone();
        async move { s.request_on_thread("t", approval()).await }
    });
    // The spawned waiter runs up to its wait on this single-threaded runtime.
    tokio::task::yield_now().await;
    assert_eq!(s.pending_requests(), 1);
    s.withdraw_turn_requests("t", "u").await;
    assert_eq!(
        waiter.await.expect("joins"),
        ServerRequestOutcome::Cancelled
    );
    let sent = frames(&mut rx_a);
    let resolved: Vec<&Value> = sent
        .iter()
        .filter(|m| m["method"] == "serverRequest/resolved")
        .collect();
    assert_eq!(resolved.len(), 1, "{sent:?}");
    assert_eq!(
        resolved[0]["params"],
        json!({"threadId": "t", "requestId": 0})
    );
}

#[tokio::test]
async fn server_request_ids_are_unique_across_connections() {
    let s = sender();
    let (a, _ra) = connect(&s, OutboundPolicy::Wait, 8);
    let (b, _rb) = connect(&s, OutboundPolicy::Wait, 8);
    let (i1, _o1) = s.send_request(a, approval()).await;
    let (i2, _o2) = s.send_request(b, approval()).await;
    assert_ne!(i1, i2);
}

#[tokio::test]
async fn a_websocket_client_that_does_not_read_is_disconnected_not_buffered() {
    let s = sender();
    let (a, _rx) = connect(&s, OutboundPolicy::DisconnectWhenFull, 2);
    for i in 0..3 {
        s.send_error(
            a,
            Some(RequestId::Integer(i)),
            JsonRpcErrorBody::internal("x"),
        )
        .await;
    }
    assert_eq!(s.registry().dropped_slow_clients(), 1);
}

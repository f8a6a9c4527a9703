//! What the one outgoing seam reports to analytics: successful responses, targeted server
//! requests and their replays, answers attributed to the connection that answered, and
//! broadcasts counted but never tracked.

use super::*;
use crate::connection::{OutboundPolicy, SessionInfo};
use tally_analytics::{AnalyticsFact, TimedFact};
use tally_protocol::server_request::FileChangeRequestApprovalParams;
use tally_protocol::types::{EmptyResponse, Turn, TurnItemsView, TurnStartResponse, TurnStatus};
use tokio::sync::mpsc;

/// A sender whose analytics facts land in the returned queue.
fn tracked_sender() -> (Arc<OutgoingMessageSender>, mpsc::Receiver<TimedFact>) {
    let (tx, facts) = mpsc::channel(64);
    let sender = OutgoingMessageSender::with_analytics(
        Arc::new(ConnectionRegistry::default()),
        AnalyticsEventsClient::new(tx),
    );
    (Arc::new(sender), facts)
}

fn subscribed(s: &OutgoingMessageSender, thread: &str) -> (ConnectionId, mpsc::Receiver<Arc<str>>) {
    let (tx, rx) = mpsc::channel(64);
    let (id, _closed) = s.registry().register(tx, OutboundPolicy::Wait);
    s.registry().set_session(id, SessionInfo::default());
    s.registry().subscribe(id, thread);
    (id, rx)
}

fn drain(facts: &mut mpsc::Receiver<TimedFact>) -> Vec<AnalyticsFact> {
    let mut out = Vec::new();
    while let Ok(f) = facts.try_recv() {
        out.push(f.fact);
    }
    out
}

/// The server-request facts as (kind, connection, replayed).
fn request_facts(facts: &[AnalyticsFact]) -> Vec<(&'static str, Option<u64>, bool)> {
    facts
        .iter()
        .filter_map(|f| match f {
            AnalyticsFact::ServerRequest {
                connection,
                replayed,
                ..
            } => Some(("request", Some(*connection), *replayed)),
            AnalyticsFact::ServerResponse { connection, .. } => {
                Some(("response", Some(*connection), false))
            }
            AnalyticsFact::ServerRequestEnded { connection, .. } => {
                Some(("ended", *connection, false))
            }
            _ => None,
        })
        .collect()
}

fn approval(thread: &str) -> ServerRequest {
    ServerRequest::FileChangeRequestApproval(FileChangeRequestApprovalParams {
        thread_id: thread.into(),
        turn_id: "u".into(),
        item_id: "call_1".into(),
        started_at_ms: 1,
        reason: None,
        grant_root: None,
    })
}

fn first_id(rx: &mut mpsc::Receiver<Arc<str>>) -> RequestId {
    let frame: Value = rx
        .try_recv()
        .ok()
        .and_then(|f| serde_json::from_str(&f).ok())
        .unwrap_or_default();
    serde_json::from_value(frame["id"].clone()).unwrap_or(RequestId::Integer(-1))
}

#[tokio::test]
async fn a_successful_response_is_reported_with_its_connection_and_id() {
    let (s, mut facts) = tracked_sender();
    let (c, _rx) = subscribed(&s, "t");
    let turn = Turn {
        id: "turn-1".into(),
        root_turn_id: None,
        items: vec![],
        items_view: TurnItemsView::Summary,
        status: TurnStatus::InProgress,
        error: None,
        started_at: None,
        completed_at: None,
        duration_ms: None,
    };
    s.send_response(
        c,
        RequestId::Integer(7),
        ClientResponsePayload::TurnStart(TurnStartResponse { turn }),
    )
    .await;
    // A response analytics does not reduce is filtered before it is queued.
    s.send_response(
        c,
        RequestId::Integer(8),
        ClientResponsePayload::AccountLogout(EmptyResponse {}),
    )
    .await;
    let got = drain(&mut facts);
    assert!(
        matches!(&got[..], [AnalyticsFact::ClientResponse { connection, request_id: RequestId::Integer(7), .. }] if *connection == c.0),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_targeted_request_its_replay_and_the_answer_are_attributed_to_their_connections() {
    let (s, mut facts) = tracked_sender();
    let (a, mut rx_a) = subscribed(&s, "t");
    let waiter = tokio::spawn({
        let s = s.clone();
        async move { s.request_on_thread("t", approval("t")).await }
    });
    tokio::task::yield_now().await;
    let id = first_id(&mut rx_a);
    // The client reconnects: the request is replayed to the new connection, which answers.
    s.registry().unregister(a);
    s.connection_closed(a);
    let (b, _rx_b) = subscribed(&s, "t");
    s.replay_pending("t", b).await;
    s.notify_client_response(b, id, json!({"decision": "accept"}));
    let outcome = waiter.await.unwrap_or(ServerRequestOutcome::Cancelled);
    assert!(
        matches!(outcome, ServerRequestOutcome::Answered { connection, .. } if connection == b)
    );
    assert_eq!(
        request_facts(&drain(&mut facts)),
        vec![
            ("request", Some(a.0), false),
            ("request", Some(b.0), true),
            ("response", Some(b.0), false),
        ]
    );
}

#[tokio::test]
async fn a_broadcast_is_counted_once_and_never_tracked() {
    let (s, mut facts) = tracked_sender();
    let (a, mut rx_a) = subscribed(&s, "t");
    let (b, _rx_b) = subscribed(&s, "t");
    let waiter = tokio::spawn({
        let s = s.clone();
        async move { s.request_on_thread("t", approval("t")).await }
    });
    tokio::task::yield_now().await;
    let id = first_id(&mut rx_a);
    let (c, _rx_c) = subscribed(&s, "t");
    s.replay_pending("t", c).await;
    s.notify_client_response(b, id, json!({"decision": "decline"}));
    let outcome = waiter.await.unwrap_or(ServerRequestOutcome::Cancelled);
    assert!(
        matches!(outcome, ServerRequestOutcome::Answered { connection, .. } if connection == b)
    );
    // Neither the request, its replay, nor the answer: the reducer would count the answer of an
    // untracked request as a fact it lacks context for.
    assert_eq!(request_facts(&drain(&mut facts)), vec![]);
    assert_eq!(s.analytics.stats().broadcast_requests_skipped, 1);
    let _ = a;
}

#[tokio::test]
async fn a_broadcast_that_is_withdrawn_or_refused_records_no_end() {
    let (s, mut facts) = tracked_sender();
    let (_a, mut rx_a) = subscribed(&s, "t");
    let (b, _rx_b) = subscribed(&s, "t");
    for answer in ["withdrawn", "refused"] {
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.request_on_thread("t", approval("t")).await }
        });
        tokio::task::yield_now().await;
        let id = first_id(&mut rx_a);
        if answer == "withdrawn" {
            assert!(s.cancel_request(&id));
        } else {
            s.notify_client_error(b, id, JsonRpcErrorBody::internal("no"));
        }
        let _ = waiter.await;
        while rx_a.try_recv().is_ok() {}
    }
    assert_eq!(request_facts(&drain(&mut facts)), vec![]);
    assert_eq!(s.analytics.stats().broadcast_requests_skipped, 2);
}

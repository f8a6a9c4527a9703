use super::*;
use tally_protocol::types::*;

fn enabled(capacity: usize) -> (AnalyticsEventsClient, mpsc::Receiver<TimedFact>) {
    let (tx, rx) = mpsc::channel(capacity);
    (AnalyticsEventsClient::new(tx), rx)
}

fn thread_list() -> ClientResponsePayload {
    ClientResponsePayload::ThreadList(ThreadListResponse {
        data: vec![],
        next_cursor: None,
        backwards_cursor: None,
    })
}

#[test]
fn ignored_responses_never_reach_the_queue() {
    let (client, mut rx) = enabled(8);
    client.track_client_response(1, &RequestId::Integer(1), &thread_list());
    assert!(rx.try_recv().is_err());
    assert_eq!(client.stats().ignored, 1);
    assert_eq!(client.stats().accepted, 0);
}

#[test]
fn kept_responses_are_stamped_and_queued() {
    let (client, mut rx) = enabled(8);
    let payload = ClientResponsePayload::TurnSteer(TurnSteerResponse {
        turn_id: "u".into(),
    });
    client.track_client_response(3, &RequestId::String("a".into()), &payload);
    let fact = rx.try_recv().expect("queued");
    assert!(fact.at_ms > 0);
    assert_eq!(
        fact.fact,
        AnalyticsFact::ClientResponse {
            connection: 3,
            request_id: RequestId::String("a".into()),
            payload
        }
    );
}

#[test]
fn client_requests_are_filtered_by_method_and_interrupts_need_a_turn_id() {
    let (client, mut rx) = enabled(8);
    let list = ClientRequest::ThreadList(ThreadListParams::default());
    client.track_client_request(1, &RequestId::Integer(1), &list);
    let anonymous = ClientRequest::TurnInterrupt(TurnInterruptParams {
        thread_id: "t".into(),
        turn_id: String::new(),
    });
    client.track_client_request(1, &RequestId::Integer(2), &anonymous);
    assert!(
        rx.try_recv().is_err(),
        "thread/list and an anonymous interrupt are not tracked"
    );
    let named = ClientRequest::TurnInterrupt(TurnInterruptParams {
        thread_id: "t".into(),
        turn_id: "u".into(),
    });
    client.track_client_request(1, &RequestId::Integer(3), &named);
    assert!(matches!(
        rx.try_recv().map(|f| f.fact),
        Ok(AnalyticsFact::ExplicitClientInterruptRequest { turn_id, .. }) if turn_id == "u"
    ));
}

#[test]
fn deltas_are_ignored_and_lifecycle_notifications_kept() {
    let (client, mut rx) = enabled(8);
    let delta = ServerNotification::AgentMessageDelta(
        tally_protocol::server_notification::AgentMessageDeltaNotification {
            thread_id: "t".into(),
            turn_id: "u".into(),
            item_id: "m".into(),
            delta: "secret words".into(),
        },
    );
    client.track_notification(&delta);
    assert!(rx.try_recv().is_err());
    let usage = ServerNotification::ThreadTokenUsageUpdated(
        tally_protocol::server_notification::ThreadTokenUsageUpdatedNotification {
            thread_id: "t".into(),
            turn_id: "u".into(),
            token_usage: ThreadTokenUsage::default(),
        },
    );
    client.track_notification(&usage);
    assert!(rx.try_recv().is_ok());
}

#[test]
fn a_full_queue_drops_and_counts_without_blocking() {
    let (client, _rx) = enabled(1);
    let payload = ClientResponsePayload::TurnSteer(TurnSteerResponse {
        turn_id: "u".into(),
    });
    for i in 0..3 {
        client.track_client_response(1, &RequestId::Integer(i), &payload);
    }
    let stats = client.stats();
    assert_eq!((stats.accepted, stats.dropped_queue_full), (1, 2));
}

#[test]
fn a_disabled_client_does_nothing() {
    let client = AnalyticsEventsClient::disabled();
    client.track_client_response(1, &RequestId::Integer(1), &thread_list());
    client.track_broadcast_server_request();
    assert_eq!(client.stats(), ClientStats::default());
}

#[test]
fn a_turn_diff_enters_the_queue_as_line_counts_only() {
    let (client, mut rx) = enabled(8);
    let diff =
        "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n-SECRET old\n+SECRET new\n keep\n";
    client.track_notification(&ServerNotification::TurnDiffUpdated(
        tally_protocol::server_notification::TurnDiffUpdatedNotification {
            thread_id: "t".into(),
            turn_id: "u".into(),
            diff: diff.into(),
        },
    ));
    let fact = rx.try_recv().expect("queued");
    assert_eq!(
        fact.fact,
        AnalyticsFact::TurnDiff {
            turn_id: "u".into(),
            added_lines: 1,
            deleted_lines: 1,
        }
    );
    assert!(!format!("{:?}", fact.fact).contains("SECRET"));
}

use super::*;
use crate::connection::{OutboundPolicy, SessionInfo};
use crate::registry::ConnectionRegistry;
use serde_json::json;
use tokio::sync::mpsc;

fn sender_with_client() -> (
    Arc<OutgoingMessageSender>,
    crate::ConnectionId,
    mpsc::Receiver<Arc<str>>,
) {
    let registry = Arc::new(ConnectionRegistry::default());
    let (tx, rx) = mpsc::channel(16);
    let (id, _closed) = registry.register(tx, OutboundPolicy::Wait);
    registry.set_session(id, SessionInfo::default());
    (Arc::new(OutgoingMessageSender::new(registry)), id, rx)
}

#[tokio::test]
async fn the_bridge_does_not_keep_the_sender_alive() {
    let (outgoing, _, _rx) = sender_with_client();
    let bridge = ExternalAuthRefreshBridge::new(&outgoing);
    drop(outgoing);
    assert_eq!(bridge.refresh(None).await, Err(RefreshError::ServerGone));
}

#[tokio::test]
async fn a_client_answer_returns_the_tokens() {
    let (outgoing, conn, mut rx) = sender_with_client();
    let bridge = ExternalAuthRefreshBridge::new(&outgoing);
    let refresh = tokio::spawn(async move { bridge.refresh(Some("acct-1".into())).await });
    let frame = rx.recv().await.expect("request sent");
    let request: serde_json::Value = serde_json::from_str(&frame).expect("json");
    assert_eq!(request["method"], "account/chatgptAuthTokens/refresh");
    assert_eq!(request["params"]["reason"], "unauthorized");
    let id: tally_protocol::RequestId = serde_json::from_value(request["id"].clone()).expect("id");
    outgoing.notify_client_response(
        conn,
        id,
        json!({"accessToken": "tok", "chatgptAccountId": "acct-1", "chatgptPlanType": null}),
    );
    let tokens = refresh.await.expect("task").expect("refreshed");
    assert_eq!(tokens.chatgpt_account_id, "acct-1");
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_refresh_fails_at_its_deadline_and_is_withdrawn() {
    let (outgoing, _, _rx) = sender_with_client();
    let bridge = ExternalAuthRefreshBridge::new(&outgoing);
    let err = bridge.refresh(None).await.expect_err("times out");
    assert_eq!(err, RefreshError::Timeout(REFRESH_DEADLINE));
    assert_eq!(outgoing.pending_requests(), 0);
}

#[tokio::test]
async fn without_clients_it_fails_at_once() {
    let outgoing = Arc::new(OutgoingMessageSender::new(Arc::new(
        ConnectionRegistry::default(),
    )));
    let bridge = ExternalAuthRefreshBridge::new(&outgoing);
    assert_eq!(bridge.refresh(None).await, Err(RefreshError::NoClient));
}

//! The WebSocket transport: one JSON message per text frame, many connections, plus
//! `/readyz` and `/healthz` on the same listener. Requests carrying `Origin` are refused
//! (a browser page must not drive a local agent). The same router serves TCP and Unix-socket
//! listeners; an optional [`WsAuth`] checks the upgrade's bearer token first.

use crate::connection::OutboundPolicy;
use crate::processor::{ConnectionSession, MessageProcessor};
use crate::transport::ws_auth::WsAuth;
use crate::transport::MAX_MESSAGE_BYTES;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::{SinkExt, StreamExt};
use std::future::Future;
use std::sync::Arc;
use tally_http_serve::ServeLimits;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Outbound frames queued per WebSocket client before it is disconnected as too slow.
pub const WS_OUTBOUND_CAPACITY: usize = 32 * 1024;

#[derive(Clone)]
struct WsState {
    processor: Arc<MessageProcessor>,
    auth: Option<Arc<WsAuth>>,
}

/// The router: health endpoints and a WebSocket upgrade on any other path.
pub(crate) fn router(processor: Arc<MessageProcessor>, auth: Option<Arc<WsAuth>>) -> Router {
    Router::new()
        .route("/readyz", get(health))
        .route("/healthz", get(health))
        .fallback(upgrade)
        .with_state(WsState { processor, auth })
}

async fn health(headers: HeaderMap) -> Response {
    if headers.contains_key("origin") {
        return (StatusCode::FORBIDDEN, "cross-origin requests are refused").into_response();
    }
    (StatusCode::OK, "ok").into_response()
}

async fn upgrade(
    State(WsState { processor, auth }): State<WsState>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    if headers.contains_key("origin") {
        return (StatusCode::FORBIDDEN, "cross-origin requests are refused").into_response();
    }
    if let Some(auth) = &auth {
        let presented = headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        if let Err(reason) = auth.check(presented, tally_core::clock::now_secs()) {
            // The reason names what failed, never the token.
            tracing::info!(%reason, "refusing WebSocket upgrade");
            return (StatusCode::UNAUTHORIZED, reason.to_string()).into_response();
        }
    }
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| serve_socket(processor, socket))
}

async fn serve_socket(processor: Arc<MessageProcessor>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Arc<str>>(WS_OUTBOUND_CAPACITY);
    let (id, closed) = processor
        .outgoing
        .registry()
        .register(tx, OutboundPolicy::DisconnectWhenFull);
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if sink
                .send(Message::Text(frame.as_ref().into()))
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut conn = ConnectionSession::new(id, tally_analytics::RpcTransport::Websocket);
    loop {
        let msg = tokio::select! {
            msg = stream.next() => msg,
            _ = closed.cancelled() => break,
        };
        match msg {
            Some(Ok(Message::Text(text))) => processor.process_text(&mut conn, text.as_str()).await,
            Some(Ok(Message::Binary(_))) => {
                tracing::warn!(connection = %id, "dropping binary frame; Tally speaks text frames")
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Close(_))) | None => break,
            Some(Err(e)) => {
                tracing::info!(connection = %id, error = %e, "WebSocket read failed; closing");
                break;
            }
        }
    }
    processor.connection_closed(id);
    writer.abort();
}

/// Serves WebSocket clients on a TCP `listener` until `shutdown` completes.
pub(crate) async fn serve_websocket(
    processor: Arc<MessageProcessor>,
    listener: TcpListener,
    auth: Option<Arc<WsAuth>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Small JSON frames: without TCP_NODELAY each one can wait on a delayed ACK (~40 ms).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    serve_on(listener, router(processor, auth), shutdown).await
}

/// Serves the router on any listener (TCP, Unix socket) until `shutdown` completes, with a
/// deadline on request headers and a cap on open connections (`tally_http_serve`).
pub(crate) async fn serve_on<L>(
    listener: L,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: Clone + Send + Sync + 'static,
{
    tally_http_serve::serve(listener, router, ServeLimits::default(), shutdown).await;
    Ok(())
}

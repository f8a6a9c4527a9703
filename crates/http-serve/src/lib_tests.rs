use super::*;
use axum::routing::get;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const REQUEST: &[u8] = b"GET /peer HTTP/1.1\r\nhost: test\r\n\r\n";

fn router() -> Router {
    Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
    )
}

/// A server with `limits`; dropping the sender shuts it down. The handle ends when it has.
async fn start(
    limits: ServeLimits,
) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(serve(listener, router(), limits, async move {
        let _ = stopped.await;
    }));
    (addr, stop, served)
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

/// Reads what the server sends until it pauses or closes (at most `wait`).
async fn read_some(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(wait, stream.read(&mut buf)).await {
        Ok(Ok(n)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Ok(Err(_)) => Some(String::new()),
        Err(_) => None,
    }
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_trickles_its_headers_is_cut_off_at_the_deadline() {
    let limits = ServeLimits {
        max_connections: 8,
        header_read_timeout: Duration::from_secs(5),
    };
    let (addr, _stop, _served) = start(limits).await;
    let mut slow = connect(addr).await;
    let started = tokio::time::Instant::now();
    slow.write_all(b"GET /peer HTTP/1.1\r\nhost: t")
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    // Nothing answers, and then the connection is closed (hyper may say 408 first).
    let got = read_some(&mut slow, Duration::from_secs(60)).await;
    let got = got.unwrap_or_else(|| panic!("still open after 60 s"));
    assert!(got.is_empty() || got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(started.elapsed() >= Duration::from_secs(5));
    // A prompt peer is served, with its own address.
    let mut prompt = connect(addr).await;
    prompt
        .write_all(REQUEST)
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let answer = read_some(&mut prompt, Duration::from_secs(5))
        .await
        .unwrap_or_default();
    let local = prompt.local_addr().unwrap_or_else(|e| panic!("addr: {e}"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with(&local.to_string()), "{answer}");
}

#[tokio::test(start_paused = true)]
async fn past_the_connection_cap_a_peer_waits_until_one_closes() {
    let limits = ServeLimits {
        max_connections: 1,
        header_read_timeout: Duration::from_secs(30),
    };
    let (addr, _stop, _served) = start(limits).await;
    let mut first = connect(addr).await;
    first
        .write_all(REQUEST)
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    let answer = read_some(&mut first, Duration::from_secs(5)).await;
    assert!(answer.is_some_and(|a| a.starts_with("HTTP/1.1 200")));
    // The first connection stays open (keep-alive): the second is not served meanwhile.
    let mut second = connect(addr).await;
    second
        .write_all(REQUEST)
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    assert_eq!(read_some(&mut second, Duration::from_secs(10)).await, None);
    drop(first);
    let answer = read_some(&mut second, Duration::from_secs(10)).await;
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("HTTP/1.1 200")),
        "{answer:?}"
    );
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_returns() {
    let (addr, stop, served) = start(ServeLimits::default()).await;
    let mut idle = connect(addr).await;
    idle.write_all(REQUEST)
        .await
        .unwrap_or_else(|e| panic!("write: {e}"));
    assert!(read_some(&mut idle, Duration::from_secs(5)).await.is_some());
    drop(stop);
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .unwrap_or_else(|_| panic!("serve did not return after shutdown"))
        .unwrap_or_else(|e| panic!("serve task: {e}"));
    assert_eq!(
        read_some(&mut idle, Duration::from_secs(5))
            .await
            .as_deref(),
        Some(""),
        "the idle connection was closed"
    );
}

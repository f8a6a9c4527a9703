//! Builds the app-server from config and runs it on a transport.

use crate::outgoing::OutgoingMessageSender;
use crate::processor::MessageProcessor;
use crate::registry::ConnectionRegistry;
use crate::thread_events::ThreadEventsToSubscribers;
use crate::transport::unix::ControlSocket;
use crate::transport::ws_auth::WsAuth;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tally_core::{Config, ThreadManager};
use tokio::net::TcpListener;

/// Options that do not come from config.toml.
#[derive(Clone, Default)]
pub struct AppServerOptions {
    /// How long server requests (approvals, tool calls) may stay unanswered.
    pub request_deadlines: crate::outgoing::RequestDeadlines,
    /// Act as if the kernel lacked Landlock: commands ask for approval instead of running in
    /// the sandbox (and clients get the `configWarning`).
    pub disable_landlock: bool,
    /// Where analytics go instead of the configured destination (`tally serve`: the embedded store).
    pub analytics_sink: Option<Arc<dyn tally_analytics::delivery::EventSink>>,
}

impl std::fmt::Debug for AppServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppServerOptions")
            .field("request_deadlines", &self.request_deadlines)
            .field("disable_landlock", &self.disable_landlock)
            .field("analytics_sink", &self.analytics_sink.is_some())
            .finish()
    }
}

/// A ready-to-run app-server.
pub struct AppServer {
    processor: Arc<MessageProcessor>,
    analytics: std::sync::Mutex<Option<tally_analytics::pipeline::AnalyticsPipeline>>,
    /// Stops the idle-unload sweeper (at shutdown, or when the server is dropped).
    idle_unload_stop: tokio_util::sync::CancellationToken,
}

/// Where `--listen` asks the server to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenTarget {
    Stdio,
    WebSocket(SocketAddr),
    /// A Unix socket; `None` is the default control socket under the home.
    Unix(Option<PathBuf>),
}

/// The flags that make a non-loopback listener acceptable (named in the refusal).
pub const WS_AUTH_FLAGS_HINT: &str = "add --ws-auth capability-token --ws-token-file PATH, or --ws-auth signed-bearer-token --ws-shared-secret-file PATH";

impl ListenTarget {
    /// Parses `stdio://`, `ws://IP:PORT`, `unix://` or `unix://PATH`.
    pub fn parse(url: &str) -> Result<Self, String> {
        if url == "stdio://" || url == "stdio" {
            return Ok(ListenTarget::Stdio);
        }
        if let Some(path) = url.strip_prefix("unix://") {
            return Ok(ListenTarget::Unix(
                (!path.is_empty()).then(|| PathBuf::from(path)),
            ));
        }
        let Some(rest) = url.strip_prefix("ws://") else {
            return Err(format!(
                "--listen {url:?}: expected stdio://, ws://IP:PORT, unix:// or unix://PATH"
            ));
        };
        let addr: SocketAddr = rest
            .trim_end_matches('/')
            .parse()
            .map_err(|e| format!("--listen {url:?}: {e} (expected ws://IP:PORT)"))?;
        Ok(ListenTarget::WebSocket(addr))
    }

    /// Refuses a non-loopback WebSocket listener without auth, saying which flags to add.
    pub fn check_auth(&self, has_auth: bool) -> Result<(), String> {
        match self {
            ListenTarget::WebSocket(addr) if !addr.ip().is_loopback() && !has_auth => Err(format!(
                "--listen ws://{addr}: refusing a non-loopback listener without WebSocket auth; {WS_AUTH_FLAGS_HINT}"
            )),
            ListenTarget::Stdio if has_auth => {
                Err("--ws-auth applies to ws:// and unix:// listeners, not stdio".to_string())
            }
            _ => Ok(()),
        }
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        self.idle_unload_stop.cancel();
    }
}

impl AppServer {
    /// Wires the sender, thread manager and processor for `config`.
    pub fn new(config: Config, options: AppServerOptions) -> Self {
        let config = Arc::new(config);
        let auth = crate::auth_setup::load_auth(&config);
        let analytics = crate::analytics_setup::start_analytics(
            &config,
            options.analytics_sink.clone(),
            auth.clone(),
        );
        let client = analytics.as_ref().map(|a| a.client()).unwrap_or_default();
        let registry = Arc::new(ConnectionRegistry::default());
        let outgoing = Arc::new(
            OutgoingMessageSender::with_analytics(registry, client)
                .with_request_deadlines(options.request_deadlines),
        );
        let sink = Arc::new(ThreadEventsToSubscribers(outgoing.clone()));
        auth.set_external_refresher(Arc::new(crate::auth_setup::BridgeRefresher(
            crate::ExternalAuthRefreshBridge::new(&outgoing),
        )));
        if auth.agent_identity().is_some() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let auth = auth.clone();
                // Registration is bounded by its request deadlines and retries; until it ends,
                // requests go out with bearer.
                runtime.spawn(async move { auth.prepare_agent_identity().await });
            }
        }
        let mut threads = ThreadManager::new(config.clone(), sink).with_auth(auth.clone());
        if options.disable_landlock {
            threads = threads.without_landlock();
        }
        let threads = Arc::new(threads);
        crate::auth_setup::keep_thread_tasks_with_threads(&auth, &threads);
        let idle_unload_stop = tokio_util::sync::CancellationToken::new();
        if let Some(timeout) = config.thread_idle_unload {
            let _ =
                crate::idle_unload::spawn(&threads, &outgoing, timeout, idle_unload_stop.clone());
        }
        Self {
            processor: Arc::new(MessageProcessor::new(outgoing, threads, config, auth)),
            analytics: std::sync::Mutex::new(analytics),
            idle_unload_stop,
        }
    }

    /// What the message processor refused or dropped (lines that are not JSON, invalid
    /// messages, requests refused as overloaded).
    pub fn processor_stats(&self) -> &crate::processor::ProcessorStats {
        &self.processor.stats
    }

    /// Ends the sessions (SessionEnd hooks, each capped, reported before analytics flush) and
    /// cancels async hooks, then flushes analytics within its deadline; what is not sent stays
    /// spooled for the next start.
    pub async fn shutdown(&self) {
        self.idle_unload_stop.cancel();
        self.processor.threads.shutdown().await;
        let pipeline = self.analytics.lock().ok().and_then(|mut a| a.take());
        if let Some(p) = pipeline {
            p.shutdown().await;
        }
    }

    /// The credentials owner (login state, agent identity).
    pub fn auth(&self) -> Arc<tally_auth::AuthManager> {
        self.processor.auth.clone()
    }

    /// A bridge for auth to ask clients for fresh ChatGPT tokens; it never keeps the server alive.
    pub fn external_auth_bridge(&self) -> crate::ExternalAuthRefreshBridge {
        crate::ExternalAuthRefreshBridge::new(&self.processor.outgoing)
    }

    /// The outgoing seam (for wiring analytics and tests).
    pub fn outgoing(&self) -> Arc<OutgoingMessageSender> {
        self.processor.outgoing.clone()
    }

    /// Serves stdin/stdout until stdin closes.
    pub async fn run_stdio(&self) {
        crate::transport::stdio::serve_stdio(self.processor.clone()).await;
    }

    /// Serves one connection over any reader and writer (tests, pipes).
    pub async fn run_lines<R, W>(&self, reader: R, writer: W)
    where
        R: tokio::io::AsyncBufRead + Unpin,
        W: tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        crate::transport::stdio::serve_lines(self.processor.clone(), reader, writer).await;
    }

    /// Serves WebSocket clients on `listener` until `shutdown` completes.
    pub async fn run_websocket(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.run_websocket_with_auth(listener, None, shutdown).await
    }

    /// Serves WebSocket clients on `listener`, each upgrade checked by `auth` when given.
    pub async fn run_websocket_with_auth(
        &self,
        listener: TcpListener,
        auth: Option<WsAuth>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        crate::transport::websocket::serve_websocket(
            self.processor.clone(),
            listener,
            auth.map(Arc::new),
            shutdown,
        )
        .await
    }

    /// Serves WebSocket clients over the Unix `socket` until `shutdown` completes, then removes
    /// the socket file.
    pub async fn run_unix(
        &self,
        mut socket: ControlSocket,
        auth: Option<WsAuth>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Some(listener) = socket.take_listener() else {
            return Err(std::io::Error::other("control socket already served"));
        };
        let router =
            crate::transport::websocket::router(self.processor.clone(), auth.map(Arc::new));
        let served = crate::transport::websocket::serve_on(listener, router, shutdown).await;
        drop(socket);
        served
    }
}

//! Wiring: shared state, the router, and starting/stopping a collector on a listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tally_http_serve::ServeLimits;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::Authenticator;
use crate::config::{CollectorConfig, Scope};
use crate::error::ApiError;
use crate::ingest::{ingest, INGEST_PATH};
use crate::local_ingest::LocalIngest;
use crate::metrics::Metrics;
use crate::queue::IngestQueue;
use crate::report::{parse_duration, ReportQuery, DAY_MS, HOUR_MS};
use crate::store::{open_store, EventStore};

/// How long shutdown waits for in-flight requests to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How long shutdown waits for the writer to drain queued batches.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Request-body buffers kept for reuse at most, and the largest kept: a batch of 1000 events is
/// about a megabyte, so this holds at most 16 MiB for the common case and nothing for rare huge
/// bodies.
const SPARE_BODY_BUFFERS: usize = 8;
const MAX_SPARE_BODY_BYTES: usize = 2 << 20;

/// Everything a request handler needs.
pub struct AppState {
    /// The configuration the collector runs with.
    pub config: CollectorConfig,
    /// Token table.
    pub auth: Authenticator,
    /// The bounded queue to the store writer.
    pub queue: IngestQueue,
    /// The store (reads go straight to it).
    pub store: Arc<dyn EventStore>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Ingest requests being read and decoded at most (bounds memory; 429 beyond).
    pub inflight: Arc<tokio::sync::Semaphore>,
    /// Spare request-body buffers.
    pub body_buffers: crate::body_buffers::BodyBuffers,
    /// The reports being computed (a few at once, each with a deadline).
    pub reports: crate::report_gate::ReportGate,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("engine", &self.store.engine())
            .field("queue", &self.queue)
            .finish()
    }
}

/// The collector's HTTP routes over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    let mut router: Router<Arc<AppState>> = Router::new()
        .route("/", get(crate::dashboard::page))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/report", get(report_json))
        .route(INGEST_PATH, post(ingest));
    router = crate::codex_endpoints::routes(router, "");
    for prefix in &state.config.path_prefixes {
        router = router.route(&format!("{prefix}{INGEST_PATH}"), post(ingest));
        router = crate::codex_endpoints::routes(router, prefix);
    }
    if state.config.agent_identity.enabled {
        router = crate::identity_endpoints::routes(router, &state.config.agent_identity.prefix);
    }
    router.fallback(not_found).with_state(state)
}

/// Unknown paths: 404 in JSON, logged (a Codex calling an endpoint the collector lacks shows up
/// here) and counted.
async fn not_found(State(state): State<Arc<AppState>>, request: Request) -> Response {
    state.metrics.record_not_found();
    tracing::info!(
        method = %request.method(),
        path = %crate::event::truncate(request.uri().path(), 256),
        "collector: no such endpoint"
    );
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({"error": "not_found", "message": "no such endpoint"})),
    )
        .into_response()
}

/// A collector with its store open and its writer running, not yet listening.
pub struct Collector {
    state: Arc<AppState>,
    writer: JoinHandle<()>,
}

impl Collector {
    /// Validates the config, opens (and migrates) the store and starts the writer.
    pub async fn open(config: CollectorConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let store = open_store(&config).await?;
        Ok(Self::with_store(config, store)?)
    }

    /// Like [`Collector::open`] with a store the caller already holds (tests, embedding).
    pub fn with_store(
        config: CollectorConfig,
        store: Arc<dyn EventStore>,
    ) -> Result<Self, crate::config::ConfigError> {
        config.validate()?;
        let auth = Authenticator::from_config(&config)?;
        let metrics = Arc::new(Metrics::default());
        let (queue, writer) =
            IngestQueue::spawn(store.clone(), config.queue_capacity, metrics.clone());
        let inflight = Arc::new(tokio::sync::Semaphore::new(config.max_inflight_requests));
        let body_buffers = crate::body_buffers::BodyBuffers::new(
            SPARE_BODY_BUFFERS.min(config.max_inflight_requests),
            MAX_SPARE_BODY_BYTES,
        );
        let reports = crate::report_gate::ReportGate::new(
            crate::report_gate::MAX_CONCURRENT_REPORTS,
            metrics.clone(),
            config.retry_after_seconds,
        );
        let state = Arc::new(AppState {
            config,
            auth,
            queue,
            store,
            metrics,
            inflight,
            body_buffers,
            reports,
        });
        Ok(Collector { state, writer })
    }

    /// The shared state (for mounting [`router`] elsewhere).
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// The store, e.g. for `tally report`.
    pub fn store(&self) -> Arc<dyn EventStore> {
        self.state.store.clone()
    }

    /// A sender for events from this process, through the ingest queue.
    pub fn local_ingest(&self) -> LocalIngest {
        LocalIngest::new(&self.state)
    }

    /// Serves on `listener` until `shutdown` resolves, then drains the queue (bounded by a
    /// deadline) and returns. Nothing of the collector keeps running afterwards.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Collector { state, writer } = self;
        if let Ok(addr) = listener.local_addr() {
            let exposed = !addr.ip().is_loopback();
            if exposed && state.config.dashboard_public {
                tracing::warn!(%addr, "collector dashboard, report and metrics are readable by anyone who reaches this address (set dashboard_public = false)");
            }
            if exposed && state.config.allow_unauthenticated == crate::config::Unauthenticated::Any
            {
                tracing::warn!(%addr, "collector accepts events without a token from anyone who reaches this address");
            }
        }
        let poller = state.auth.identities().cloned().map(poll_identities);
        let sweeper = crate::retention::spawn_sweeper(
            state.store.clone(),
            state.config.retention_days,
            state.metrics.clone(),
        );
        let app = router(state.clone());
        drop(state);
        // Graceful shutdown waits for in-flight requests, but not forever.
        let (fired_tx, fired_rx) = oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            let _ = fired_tx.send(());
        };
        // A deadline on request headers and a cap on open connections, which axum::serve lacks.
        let server = tally_http_serve::serve(listener, app, ServeLimits::default(), signal);
        let grace = async move {
            match fired_rx.await {
                Ok(()) => tokio::time::sleep(SHUTDOWN_GRACE).await,
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = server => {}
            () = grace => {
                tracing::warn!("collector requests still running {SHUTDOWN_GRACE:?} after shutdown; dropping them");
            }
        }
        for task in [poller, sweeper].into_iter().flatten() {
            task.abort();
        }
        // Every handler (and so every queue sender) is gone once serve returns; the writer stores
        // what is queued and ends.
        match tokio::time::timeout(DRAIN_DEADLINE, writer).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "collector writer task failed"),
            Err(_) => tracing::warn!("collector writer did not drain within {DRAIN_DEADLINE:?}"),
        }
        Ok(())
    }
}

/// How often a collector asks where agent registrations are kept for revocations and forgotten
/// tasks (made by another collector of the fleet, or by `tally collector identities`).
const IDENTITY_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Polls the registry's backend until aborted; a failed poll is logged and retried next time.
fn poll_identities(registry: Arc<crate::agent_identity::IdentityRegistry>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(IDENTITY_POLL_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let poll = tokio::time::timeout(IDENTITY_POLL_INTERVAL * 10, registry.poll());
            match poll.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "agent identities not refreshed"),
                Err(_) => tracing::warn!("agent identities not refreshed within 10 s"),
            }
        }
    })
}

/// Opens a collector from `config` and serves it on `listener` until `shutdown` resolves.
pub async fn serve(
    config: CollectorConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    Collector::open(config)
        .await?
        .serve(listener, shutdown)
        .await
}

/// A collector running in a background task.
#[derive(Debug)]
pub struct CollectorHandle {
    local_addr: SocketAddr,
    store: Arc<dyn EventStore>,
    local: LocalIngest,
    identities: Option<Arc<crate::agent_identity::IdentityRegistry>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl std::fmt::Debug for dyn EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EventStore({})", self.engine())
    }
}

impl CollectorHandle {
    /// The address the collector listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Base URL, e.g. `http://127.0.0.1:8787`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The collector's store.
    pub fn store(&self) -> Arc<dyn EventStore> {
        self.store.clone()
    }

    /// A sender for events from this process (`tally serve`'s analytics), through the ingest
    /// queue: stored, deduplicated and counted as a posted batch is.
    pub fn local_ingest(&self) -> LocalIngest {
        self.local.clone()
    }

    /// The agent-identity registry, when agent identity is enabled.
    pub fn identities(&self) -> Option<&Arc<crate::agent_identity::IdentityRegistry>> {
        self.identities.as_ref()
    }

    /// Stops accepting, finishes in-flight requests, drains the queue and waits for the task.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await?
    }
}

/// Opens a collector and serves it on `listener` in a background task.
pub async fn start(
    config: CollectorConfig,
    listener: TcpListener,
) -> anyhow::Result<CollectorHandle> {
    let local_addr = listener.local_addr()?;
    let collector = Collector::open(config).await?;
    let store = collector.store();
    let local = collector.local_ingest();
    let identities = collector.state().auth.identities().cloned();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(collector.serve(listener, async move {
        let _ = stopped.await;
    }));
    Ok(CollectorHandle {
        local_addr,
        store,
        local,
        identities,
        stop: Some(stop),
        task,
    })
}

/// Checks the read scope for the dashboard, report and metrics: a token with it, unless the
/// dashboard is public (`allow_unauthenticated` is about sending events, not reading them).
pub(crate) fn authorize_read(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.config.dashboard_public {
        return Ok(());
    }
    state.auth.authenticate_account(headers, Scope::Read)?;
    Ok(())
}

/// How long `/readyz` waits for the store.
const READY_DEADLINE: Duration = Duration::from_secs(2);

/// Readiness for a load balancer: 200 when the store answers a trivial query within
/// [`READY_DEADLINE`], else 503 (`/healthz` only says the process is up). The reason goes to the
/// log, not to whoever asks (it can name the store's address).
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let answered = tokio::time::timeout(READY_DEADLINE, state.store.ready()).await;
    let problem = match answered {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!(
            "the store did not answer within {READY_DEADLINE:?}"
        )),
    };
    let engine = state.store.engine();
    match problem {
        None => Json(serde_json::json!({"status": "ready", "engine": engine})).into_response(),
        Some(error) => {
            tracing::warn!(%error, "collector not ready: its store does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "unavailable", "engine": engine})),
            )
                .into_response()
        }
    }
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    Json(serde_json::json!({
        "status": "ok",
        "engine": state.store.engine(),
        "queue_depth": state.queue.depth(),
    }))
    .into_response()
}

async fn metrics(State(state): State<Arc<AppState>>, request: Request) -> Response {
    if let Err(e) = authorize_read(&state, request.headers()) {
        return e.into_response();
    }
    let mut body = state
        .metrics
        .render(state.queue.depth(), state.queue.capacity());
    if let Some(identities) = state.auth.identities() {
        body.push_str(&identities.render_metrics());
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Query string of `/api/report` and `/`.
#[derive(Debug, Default, Deserialize)]
pub struct ReportParams {
    /// Range ending now, e.g. `7d` (default) or `24h`.
    pub since: Option<String>,
    /// Client filter.
    pub client: Option<String>,
}

impl ReportParams {
    /// The report query these parameters ask for.
    pub fn to_query(&self) -> Result<ReportQuery, ApiError> {
        let since = parse_duration(self.since.as_deref().unwrap_or("7d")).map_err(|reason| {
            ApiError::BadQuery {
                field: "since".into(),
                reason,
            }
        })?;
        let mut query = ReportQuery::last(since).for_client(self.client.clone());
        if query.until_ms - query.since_ms > 2 * DAY_MS {
            query.bucket_ms = DAY_MS;
        } else {
            query.bucket_ms = HOUR_MS;
        }
        Ok(query)
    }
}

async fn report_json(
    State(state): State<Arc<AppState>>,
    Query(params): Query<ReportParams>,
    request: Request,
) -> Response {
    if let Err(e) = authorize_read(&state, request.headers()) {
        return e.into_response();
    }
    let query = match params.to_query() {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    match state.reports.report(&state.store, query).await {
        Ok(report) => Json(report).into_response(),
        Err(e) => e.into_response(),
    }
}

/// An HTML page for a read that failed (used by the dashboard), with its `Retry-After`.
pub(crate) fn html_refusal(e: &ApiError) -> Response {
    let mut page = html_error(e.status(), &e.to_string());
    if let Some(secs) = e.retry_after_seconds() {
        page.headers_mut()
            .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
    }
    page
}

/// An HTML page for a read that failed (used by the dashboard).
pub(crate) fn html_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Html(format!(
            "<!doctype html><meta charset=utf-8><title>Tally</title><p>{}</p>",
            crate::dashboard::escape(message)
        )),
    )
        .into_response()
}

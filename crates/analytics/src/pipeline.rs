//! Wires the pipeline: client → bounded fact queue → one reducer task → delivery.

use crate::client::{AnalyticsEventsClient, ClientCounters};
use crate::delivery::{self, DeliveryConfig, DeliveryHandle, EventEnvelope, EventSink};
use crate::drops::DropReporter;
use crate::events::AnalyticsEvent;
use crate::facts::TimedFact;
use crate::reducer::{Reducer, ReducerLimits, ReducerStats};
use crate::runtime_info::current_runtime;
use crate::status::{write_status, AnalyticsStatus};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Facts queued between the seam and the reducer before new ones are dropped (and counted).
pub const FACT_QUEUE_CAPACITY: usize = 4096;

/// A running pipeline; `shutdown` drains the reducer and flushes delivery within its deadline.
pub struct AnalyticsPipeline {
    client: AnalyticsEventsClient,
    stop: CancellationToken,
    reducer_task: JoinHandle<ReduceTask>,
    reducer_stats: Arc<Mutex<ReducerStats>>,
}

impl AnalyticsPipeline {
    /// Starts delivery to `sink` and the reducer task on the current runtime; a status snapshot
    /// is written to `status_path` every few seconds and at shutdown (`tally analytics status`).
    pub fn start(
        sink: Arc<dyn EventSink>,
        config: DeliveryConfig,
        status_path: Option<PathBuf>,
    ) -> std::io::Result<Self> {
        let delivery = delivery::start(config, sink)?;
        let (tx, rx) = mpsc::channel(FACT_QUEUE_CAPACITY);
        let client = AnalyticsEventsClient::new(tx);
        let stop = CancellationToken::new();
        let reducer_stats = Arc::new(Mutex::new(ReducerStats::default()));
        let reducer = Reducer::new(current_runtime(), ReducerLimits::default());
        let task = ReduceTask {
            rx,
            reducer,
            delivery,
            stop: stop.clone(),
            stats: reducer_stats.clone(),
            client_counters: client.counters(),
            status_path,
            drops: DropReporter::new(crate::clock_ms()),
        };
        let reducer_task = tokio::spawn(task.run());
        Ok(Self {
            client,
            stop,
            reducer_task,
            reducer_stats,
        })
    }

    /// The client to hand to the outgoing seam.
    pub fn client(&self) -> AnalyticsEventsClient {
        self.client.clone()
    }

    /// What the reducer dropped or evicted so far.
    pub fn reducer_stats(&self) -> ReducerStats {
        self.reducer_stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Stops intake, reduces what is queued, and flushes delivery (the rest stays spooled); the
    /// status file then holds the final counters, drops of the last flush included.
    pub async fn shutdown(self) {
        self.stop.cancel();
        match self.reducer_task.await {
            Ok(task) => task.finish().await,
            Err(e) => tracing::warn!(error = %e, "analytics reducer task ended abnormally"),
        }
    }
}

/// How often the status snapshot is rewritten while running.
const STATUS_INTERVAL: Duration = Duration::from_secs(2);

struct ReduceTask {
    rx: mpsc::Receiver<TimedFact>,
    reducer: Reducer,
    delivery: DeliveryHandle,
    stop: CancellationToken,
    stats: Arc<Mutex<ReducerStats>>,
    client_counters: Arc<ClientCounters>,
    status_path: Option<PathBuf>,
    drops: DropReporter,
}

impl ReduceTask {
    /// Reduces facts until stopped (or every sender is gone), then hands itself back for
    /// [`ReduceTask::finish`].
    async fn run(mut self) -> Self {
        let mut ticker = tokio::time::interval(STATUS_INTERVAL);
        loop {
            tokio::select! {
                fact = self.rx.recv() => match fact {
                    Some(fact) => self.ingest(fact),
                    None => break,
                },
                _ = ticker.tick() => self.report(),
                _ = self.stop.cancelled() => {
                    self.rx.close();
                    while let Ok(fact) = self.rx.try_recv() {
                        self.ingest(fact);
                    }
                    break;
                }
            }
        }
        self.report();
        self
    }

    /// Flushes delivery and writes the final status: what the flush itself dropped cannot be
    /// sent any more, so the status file and the log are where it shows.
    async fn finish(mut self) {
        self.reducer.abandon();
        let client = self.client_counters.snapshot();
        let reducer = self.reducer.stats().clone();
        let delivery = self.delivery.shutdown().await;
        let dropped = delivery.dropped.total();
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "analytics events were dropped (see `tally analytics status`)"
            );
        }
        if let Some(path) = &self.status_path {
            write_status_file(path, client, reducer, delivery);
        }
    }

    fn ingest(&mut self, fact: TimedFact) {
        emit(&self.delivery, self.reducer.ingest(fact));
    }

    /// Publishes counters: in memory for `reducer_stats`, on disk for `tally analytics status`.
    fn report(&mut self) {
        if let Ok(mut s) = self.stats.lock() {
            s.clone_from(self.reducer.stats());
        }
        let now = crate::clock_ms();
        let client = self.client_counters.snapshot();
        let delivery = self.delivery.stats();
        let drops = self
            .drops
            .report(now, &client, self.reducer.stats(), &delivery);
        emit(&self.delivery, drops);
        if let Some(path) = &self.status_path {
            write_status_file(path, client, self.reducer.stats().clone(), delivery);
        }
    }
}

/// Writes the counters for `tally analytics status`.
fn write_status_file(
    path: &std::path::Path,
    client: crate::client::ClientStats,
    reducer: ReducerStats,
    delivery: crate::delivery::DeliveryStats,
) {
    let status = AnalyticsStatus {
        pid: std::process::id(),
        updated_at_ms: crate::clock_ms(),
        client,
        reducer,
        delivery,
    };
    if let Err(e) = write_status(path, &status) {
        tracing::debug!(error = %e, "cannot write analytics status");
    }
}

fn emit(delivery: &DeliveryHandle, events: Vec<AnalyticsEvent>) {
    for event in events {
        match envelope(&event) {
            // A full delivery queue is counted inside delivery; the reducer never blocks.
            Some(e) if matches!(event, AnalyticsEvent::AnalyticsDropped(_)) => {
                let _ = delivery.try_enqueue_report(e);
            }
            Some(e) if event.sent_alone() => {
                let _ = delivery.try_enqueue_alone(e);
            }
            Some(e) => {
                let _ = delivery.try_enqueue(e);
            }
            None => tracing::error!(
                event = event.event_type(),
                "cannot serialize analytics event"
            ),
        }
    }
}

/// Wraps an event with a fresh UUIDv7 id for idempotent delivery.
pub fn envelope(event: &AnalyticsEvent) -> Option<EventEnvelope> {
    Some(EventEnvelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        event_type: event.event_type().to_string(),
        event_params: event.params().ok()?,
    })
}

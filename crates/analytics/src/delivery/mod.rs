//! Delivery that loses nothing: bounded queue → batcher → durable spool → sender → sink.
//!
//! ```text
//! try_enqueue ─► queue (bounded; full = counted drop)
//!                 └─► intake task: batcher (count | bytes | age) ─► spool (segments, fsync policy)
//!                     (try_enqueue_alone: cuts the open batch, then a batch of one)
//!                                                                    └─► sender task ─► EventSink
//!                                                retry / split / keep / drop; ack after 2xx only
//! ```
//!
//! At-least-once from the spool on: a batch leaves the spool only after a 2xx (or a counted drop:
//! a lone event that still draws 413, or another 4xx), so a crash or kill at any point re-sends
//! it on the next start and the collector dedupes by `event_id`. Events still in the queue or in
//! the open batch when the process is killed are lost; a graceful shutdown or drop spools them.
//!
//! Spool cap: when a new batch would take the spool past `spool_max_bytes`, the new batch is
//! refused and its events counted as `spool_full`. Refusing the newest (Vector's `drop_newest`)
//! rather than evicting the oldest keeps the spool append-only and FIFO, so the batch the sender
//! is working on can never vanish under it, and the collector sees one gap at the end of an
//! outage instead of holes punched into history it was already promised.
//!
//! Stopping: [`DeliveryHandle::shutdown`] (or dropping the handle) closes the queue, spools what
//! is left, and lets the sender keep going until the spool is empty or `shutdown_flush_deadline`
//! passes; then both tasks end and whatever is unsent stays in the spool for the next start.

mod batcher;
mod config;
mod envelope;
mod intake;
mod pipeline;
mod retry;
mod sender;
pub mod sinks;
mod spool;
mod stats;

use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use config::{spool_dir_for_home, DeliveryConfig, FsyncPolicy};
pub use envelope::EventEnvelope;
pub use sinks::{
    AssertionRecovery, AuthHeaderProvider, EventSink, HttpSink, HttpSinkConfig, HttpSinkError,
    JsonlSink, SinkResult, INGEST_PATH,
};
pub use spool::{read_spool_stats, SpoolStats};
pub use stats::{DeliveryStats, DroppedStats, ErrorClass};

use pipeline::Shared;
use spool::Spool;
use stats::Stats;

/// Extra time `shutdown` waits past the flush deadline for the tasks to end before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// An event on its way to the intake, and whether it must travel in a batch (a POST) of its own.
#[derive(Debug)]
pub(crate) struct Queued {
    pub(crate) event: EventEnvelope,
    pub(crate) alone: bool,
    /// A drop report: alone, and kept by a full spool within its reserve.
    pub(crate) report: bool,
}

/// Why `try_enqueue` did not take an event (the drop is already counted in the stats).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Dropped {
    /// The in-memory queue is full.
    #[error("analytics delivery queue is full")]
    QueueFull,
    /// The pipeline has stopped.
    #[error("analytics delivery has stopped")]
    Closed,
}

/// Starts the pipeline on the current tokio runtime, re-sending first what a previous run left in
/// the spool. Recovers the spool synchronously (blocking file I/O), so call it at startup.
pub fn start(config: DeliveryConfig, sink: Arc<dyn EventSink>) -> io::Result<DeliveryHandle> {
    config.validate()?;
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| io::Error::other("analytics delivery must start inside a tokio runtime"))?;
    let mut spool = Spool::open(
        &config.spool_dir,
        config.fsync,
        config.spool_max_bytes,
        config.segment_max_bytes,
    )?;
    let stats = Arc::new(Stats::default());
    let corrupt = spool.take_corrupt();
    if corrupt > 0 {
        stats.add(&stats.corrupt_records, corrupt);
    }
    stats.set_spool(spool.stats());
    let (queue_tx, queue_rx) = mpsc::channel(config.queue_capacity);
    let (stop_tx, stop_rx) = watch::channel(None);
    let shared = Arc::new(Shared {
        config,
        spool: Arc::new(Mutex::new(spool)),
        stats,
        spooled: Notify::new(),
        intake_done: AtomicBool::new(false),
        stop_at: stop_rx,
    });
    let tasks = vec![
        runtime.spawn(intake::run(Arc::clone(&shared), queue_rx)),
        runtime.spawn(sender::run(Arc::clone(&shared), sink)),
    ];
    Ok(DeliveryHandle {
        queue: Some(queue_tx),
        shared,
        stop: stop_tx,
        tasks,
    })
}

/// The running pipeline: enqueue events, read stats, shut down.
///
/// Dropping it without [`DeliveryHandle::shutdown`] behaves like shutdown without waiting: the
/// tasks spool what is queued, send until the flush deadline, and end on their own.
pub struct DeliveryHandle {
    queue: Option<mpsc::Sender<Queued>>,
    shared: Arc<Shared>,
    stop: watch::Sender<Option<Instant>>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for DeliveryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryHandle")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl DeliveryHandle {
    /// Queues one event without ever blocking; a full queue drops it and counts the drop.
    pub fn try_enqueue(&self, event: EventEnvelope) -> Result<(), Dropped> {
        self.enqueue(Queued {
            event,
            alone: false,
            report: false,
        })
    }

    /// Like [`DeliveryHandle::try_enqueue`], but the event goes in a batch (a POST) of its own:
    /// the open batch is cut before it and nothing joins it.
    pub fn try_enqueue_alone(&self, event: EventEnvelope) -> Result<(), Dropped> {
        self.enqueue(Queued {
            event,
            alone: true,
            report: false,
        })
    }

    /// A drop report (`tally_analytics_dropped`): a batch of its own that a full spool still
    /// keeps, within a small reserve, so the losses of a long outage reach the collector after it.
    pub fn try_enqueue_report(&self, event: EventEnvelope) -> Result<(), Dropped> {
        self.enqueue(Queued {
            event,
            alone: true,
            report: true,
        })
    }

    fn enqueue(&self, queued: Queued) -> Result<(), Dropped> {
        let stats = &self.shared.stats;
        let Some(queue) = &self.queue else {
            stats.add(&stats.closed, 1);
            return Err(Dropped::Closed);
        };
        match queue.try_send(queued) {
            Ok(()) => {
                stats.add(&stats.enqueued, 1);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                stats.add(&stats.queue_full, 1);
                Err(Dropped::QueueFull)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                stats.add(&stats.closed, 1);
                Err(Dropped::Closed)
            }
        }
    }

    /// A snapshot of queue, spool, sent, retried and dropped counts and the last error class.
    pub fn stats(&self) -> DeliveryStats {
        let depth = self
            .queue
            .as_ref()
            .map_or(0, |q| q.max_capacity() - q.capacity());
        self.shared.stats.snapshot(depth as u64)
    }

    /// Waits until `pred` holds for the stats, or `timeout` passes; true if it held.
    ///
    /// Re-checks whenever a counter changes (queue depth alone does not wake it). Meant for
    /// tests and status tools that need "spooled" or "sent" without polling.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&DeliveryStats) -> bool,
    ) -> bool {
        let mut changes = self.shared.stats.subscribe();
        let wait = async {
            loop {
                changes.borrow_and_update();
                if pred(&self.stats()) {
                    return;
                }
                if changes.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// Stops intake, sends what it can until `shutdown_flush_deadline`, and leaves the rest in the
    /// spool for the next start; every task has ended when this returns, and the counters it
    /// returns are final (drops of the last flush included).
    pub async fn shutdown(mut self) -> DeliveryStats {
        let deadline = Instant::now() + self.shared.config.shutdown_flush_deadline;
        self.stop.send_replace(Some(deadline));
        // Closing the queue lets the intake drain it, spool the open batch and finish.
        self.queue = None;
        for mut task in std::mem::take(&mut self.tasks) {
            if tokio::time::timeout_at(deadline + SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                // Only a hung disk gets here; the spool keeps whatever was already written.
                tracing::warn!("analytics delivery task did not stop in time: aborted");
                task.abort();
            }
        }
        self.stats()
    }
}

impl Drop for DeliveryHandle {
    fn drop(&mut self) {
        if self.queue.is_some() {
            // Dropped without shutdown: give the tasks the same deadline, then they end alone.
            let deadline = Instant::now() + self.shared.config.shutdown_flush_deadline;
            self.stop.send_replace(Some(deadline));
        }
    }
}

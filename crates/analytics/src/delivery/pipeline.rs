//! State the intake and sender tasks share, and the one way they touch the spool.

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use super::config::DeliveryConfig;
use super::spool::Spool;
use super::stats::Stats;

/// What both tasks see.
pub(crate) struct Shared {
    pub(crate) config: DeliveryConfig,
    pub(crate) spool: Arc<Mutex<Spool>>,
    pub(crate) stats: Arc<Stats>,
    /// Wakes the sender when a batch lands in the spool or the intake finishes.
    pub(crate) spooled: Notify,
    /// Set once the intake has spooled its last batch (the queue is closed and drained).
    pub(crate) intake_done: AtomicBool,
    /// `Some(deadline)` once shutdown or drop asked the pipeline to stop by then.
    pub(crate) stop_at: watch::Receiver<Option<Instant>>,
}

impl Shared {
    /// Runs `f` on the spool on the blocking pool (file I/O and fsync stay off the async
    /// workers), then publishes the spool's stats. `None` if the runtime is shutting down.
    pub(crate) async fn with_spool<R, F>(self: &Arc<Self>, f: F) -> Option<R>
    where
        F: FnOnce(&mut Spool) -> R + Send + 'static,
        R: Send + 'static,
    {
        let shared = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut spool = shared.spool.lock().unwrap_or_else(PoisonError::into_inner);
            let result = f(&mut spool);
            let corrupt = spool.take_corrupt();
            let snapshot = spool.stats();
            drop(spool);
            if corrupt > 0 {
                shared.stats.add(&shared.stats.corrupt_records, corrupt);
            }
            shared.stats.set_spool(snapshot);
            result
        })
        .await
        .ok()
    }

    /// Resolves when the stop deadline passes (never, until a deadline is set).
    pub(crate) fn hard_stop(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.stop_at.clone();
        async move {
            loop {
                let deadline = *rx.borrow_and_update();
                if let Some(at) = deadline {
                    tokio::time::sleep_until(at).await;
                    return;
                }
                if rx.changed().await.is_err() {
                    // The handle always sets a deadline before it goes; if it somehow did not,
                    // stopping now is the only way not to run forever.
                    return;
                }
            }
        }
    }
}

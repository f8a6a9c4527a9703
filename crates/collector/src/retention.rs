//! `retention_days`: a background sweep deletes events older than the window, at start and
//! every hour after, in short steps so that ingest and shutdown never wait long for it.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::report::DAY_MS;
use crate::store::{EventStore, StoreError};

/// How often the window is applied once nothing older is left.
const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);
/// Longest one step deletes for (a step in flight is what shutdown may wait for).
const STEP_BUDGET: Duration = Duration::from_secs(2);
/// Pause between steps while a backlog is deleted.
const STEP_PAUSE: Duration = Duration::from_millis(200);

/// Deletes everything older than `days` days, step by step; how many rows went.
pub async fn sweep(
    store: &dyn EventStore,
    days: u32,
    metrics: &Metrics,
) -> Result<u64, StoreError> {
    let cutoff_ms = crate::time::now_ms() - i64::from(days) * DAY_MS;
    let mut deleted = 0;
    loop {
        let step = store.delete_before(cutoff_ms, STEP_BUDGET).await?;
        metrics.record_retention_deleted(step.deleted);
        deleted += step.deleted;
        if step.done {
            break;
        }
        tokio::time::sleep(STEP_PAUSE).await;
    }
    if deleted > 0 {
        tracing::info!(
            deleted,
            days,
            "collector: events older than the retention window deleted"
        );
    }
    Ok(deleted)
}

/// Sweeps at start and every [`SWEEP_INTERVAL`] until aborted; `None` when `days` is 0 (keep
/// everything). A failed sweep is logged, counted and tried again at the next interval.
pub(crate) fn spawn_sweeper(
    store: Arc<dyn EventStore>,
    days: u32,
    metrics: Arc<Metrics>,
) -> Option<JoinHandle<()>> {
    (days > 0).then(|| {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(e) = sweep(store.as_ref(), days, &metrics).await {
                    metrics.record_store_error();
                    tracing::warn!(error = %e, "collector retention sweep failed");
                }
            }
        })
    })
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;

//! The intake task: bounded queue → batcher → spool.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::batcher::{Batch, Batcher};
use super::pipeline::Shared;
use super::spool::AppendError;
use super::stats::ErrorClass;
use super::Queued;

/// Drains the queue into batches and appends them to the spool until the queue closes; then
/// spools the open batch and tells the sender no more will come.
pub(crate) async fn run(shared: Arc<Shared>, mut queue: mpsc::Receiver<Queued>) {
    let config = &shared.config;
    let mut batcher = Batcher::new(config.max_batch_events, config.max_batch_bytes);
    loop {
        let due = batcher.due_at(config.max_batch_age);
        let next = tokio::select! {
            event = queue.recv() => event,
            () = sleep_until_some(due) => {
                if let Some(batch) = batcher.take() {
                    spool_batch(&shared, batch).await;
                }
                continue;
            }
        };
        let Some(Queued {
            event,
            alone,
            report,
        }) = next
        else {
            break;
        };
        match serde_json::to_vec(&event) {
            Ok(encoded) => {
                let mut batches = if alone {
                    batcher.push_alone(&encoded)
                } else {
                    batcher.push(&encoded, Instant::now())
                };
                // The report is the batch cut alone, the last one.
                if let (true, Some(last)) = (report, batches.last_mut()) {
                    last.report = true;
                }
                for batch in batches {
                    spool_batch(&shared, batch).await;
                }
            }
            Err(_) => shared.stats.add(&shared.stats.encode, 1),
        }
    }
    if let Some(batch) = batcher.take() {
        spool_batch(&shared, batch).await;
    }
    if shared.with_spool(|s| s.sync()).await.is_none() {
        tracing::debug!("analytics spool: final sync skipped, runtime shutting down");
    }
    shared.intake_done.store(true, Ordering::SeqCst);
    shared.spooled.notify_one();
}

async fn sleep_until_some(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Appends a batch, counting its events as dropped if the spool refuses it.
async fn spool_batch(shared: &Arc<Shared>, batch: Batch) {
    let events = batch.events as u64;
    let stats = &shared.stats;
    match shared.with_spool(move |s| s.append(&batch)).await {
        Some(Ok(())) => shared.spooled.notify_one(),
        Some(Err(AppendError::Full)) => {
            // Refuse the newest rather than evict the oldest: see `super` (spool cap).
            stats.add(&stats.spool_full, events);
            tracing::warn!(events, "analytics spool full: batch dropped");
        }
        Some(Err(AppendError::Io(e))) => {
            stats.add(&stats.spool_io, events);
            stats.set_error(ErrorClass::SpoolIo);
            tracing::warn!(events, error_kind = ?e.kind(), "analytics spool write failed: batch dropped");
        }
        None => stats.add(&stats.spool_io, events),
    }
}

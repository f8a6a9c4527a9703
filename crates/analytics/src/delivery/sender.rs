//! The sender task: oldest spooled batch → sink, with retry, split and drop rules; a batch leaves
//! the spool only after a 2xx (or a counted drop).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::envelope::EventEnvelope;
use super::pipeline::Shared;
use super::retry::{backoff, retry_delay};
use super::sinks::{EventSink, SinkResult};
use super::stats::ErrorClass;

type HardStop = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How one spooled batch ended.
enum Outcome {
    /// Every part was stored or dropped and counted: remove it from the spool.
    Done,
    /// The stop deadline passed: the batch stays in the spool for the next start.
    Stopped,
}

/// Sends spooled batches, oldest first, until the intake is done and the spool is empty, or the
/// stop deadline passes.
pub(crate) async fn run(shared: Arc<Shared>, sink: Arc<dyn EventSink>) {
    let mut stop: HardStop = Box::pin(shared.hard_stop());
    let mut spool_failures = 0u32;
    loop {
        // Read before peeking: if the intake was done then, the peek sees its last batch.
        let intake_done = shared.intake_done.load(Ordering::SeqCst);
        let next = tokio::select! {
            next = shared.with_spool(|s| s.peek()) => next,
            () = &mut stop => return,
        };
        match next {
            Some(Ok(Some((record, events)))) => {
                spool_failures = 0;
                match deliver(&shared, sink.as_ref(), events, &mut stop).await {
                    Outcome::Stopped => return,
                    Outcome::Done => match shared.with_spool(move |s| s.ack(&record)).await {
                        Some(Ok(())) => {}
                        // Not acknowledged means sent again later: a duplicate, never a loss.
                        _ => {
                            shared.stats.set_error(ErrorClass::SpoolIo);
                            if !pause(&shared, &mut spool_failures, &mut stop).await {
                                return;
                            }
                        }
                    },
                }
            }
            Some(Ok(None)) => {
                if intake_done {
                    return;
                }
                tokio::select! {
                    () = shared.spooled.notified() => {}
                    () = &mut stop => return,
                }
            }
            Some(Err(e)) => {
                tracing::warn!(error_kind = ?e.kind(), "analytics spool read failed");
                shared.stats.set_error(ErrorClass::SpoolIo);
                if !pause(&shared, &mut spool_failures, &mut stop).await {
                    return;
                }
            }
            None => return,
        }
    }
}

/// Backs off after a spool failure; false if the stop deadline passed meanwhile.
async fn pause(shared: &Shared, failures: &mut u32, stop: &mut HardStop) -> bool {
    let config = &shared.config;
    let delay = backoff(*failures, config.initial_backoff, config.max_backoff);
    *failures = failures.saturating_add(1);
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        () = stop => false,
    }
}

/// Sends one spooled batch until every part is stored or dropped; a 413 replaces a part by its
/// halves, sent in order.
async fn deliver(
    shared: &Shared,
    sink: &dyn EventSink,
    events: Vec<EventEnvelope>,
    stop: &mut HardStop,
) -> Outcome {
    let config = &shared.config;
    let stats = &shared.stats;
    // A stack: the next part to send is on top.
    let mut parts = vec![events];
    while let Some(mut part) = parts.pop() {
        let mut attempt = 0u32;
        loop {
            let result = tokio::select! {
                r = tokio::time::timeout(config.attempt_timeout, sink.send(&part)) => {
                    r.unwrap_or(SinkResult::Retryable { retry_after: None, class: ErrorClass::Timeout })
                }
                () = &mut *stop => return Outcome::Stopped,
            };
            let delay = match result {
                SinkResult::Ok => {
                    stats.add(&stats.sent_events, part.len() as u64);
                    stats.add(&stats.sent_batches, 1);
                    if stats.auth_error.load(Ordering::Relaxed) {
                        stats.set_auth_error(false);
                    }
                    break;
                }
                SinkResult::TooLarge if part.len() > 1 => {
                    let second = part.split_off(part.len() / 2);
                    parts.push(second);
                    parts.push(part);
                    stats.add(&stats.split, 1);
                    break;
                }
                SinkResult::TooLarge => {
                    stats.add(&stats.too_large, 1);
                    stats.set_error(ErrorClass::Http { status: 413 });
                    tracing::warn!("analytics event too large for the collector: dropped");
                    break;
                }
                SinkResult::PartlyStored { status, stored } => {
                    let stored = stored.min(part.len());
                    let refused = part.len() - stored;
                    stats.add(&stats.sent_events, stored as u64);
                    stats.add(&stats.rejected, refused as u64);
                    stats.set_error(ErrorClass::Http { status });
                    tracing::warn!(
                        status,
                        refused,
                        "analytics events refused by the collector (it quarantined them): dropped"
                    );
                    break;
                }
                SinkResult::Rejected(status) => {
                    stats.add(&stats.rejected, part.len() as u64);
                    stats.set_error(ErrorClass::Http { status });
                    tracing::warn!(
                        status,
                        events = part.len(),
                        "analytics batch rejected: dropped"
                    );
                    break;
                }
                SinkResult::Auth(status) => {
                    // Credentials are the operator's to fix: keep the batch, keep trying, slowly.
                    stats.set_auth_error(true);
                    stats.set_error(ErrorClass::Http { status });
                    backoff(attempt, config.initial_backoff, config.max_backoff)
                }
                SinkResult::Retryable { retry_after, class } => {
                    stats.set_error(class);
                    retry_delay(
                        retry_after,
                        attempt,
                        config.initial_backoff,
                        config.max_backoff,
                        config.max_retry_after,
                    )
                }
            };
            stats.add(&stats.retried, 1);
            attempt = attempt.saturating_add(1);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = &mut *stop => return Outcome::Stopped,
            }
        }
    }
    Outcome::Done
}

#[cfg(test)]
#[path = "sender_tests.rs"]
mod tests;

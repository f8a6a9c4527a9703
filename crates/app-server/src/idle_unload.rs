//! Idle unload (PROTOCOL.md 3): a loaded thread with no subscribers and no activity (no running
//! turn, no pending server request) for the configured time is unloaded. Every initialized
//! connection hears `thread/status/changed` (`notLoaded`) then `thread/closed`; the rollout stays,
//! so `thread/resume` loads the thread again.

use crate::outgoing::OutgoingMessageSender;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tally_core::ThreadManager;
use tally_protocol::server_notification::{ThreadIdNotification, ThreadStatusChangedNotification};
use tally_protocol::types::ThreadStatus;
use tally_protocol::ServerNotification as N;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Bounds on how often the sweeper looks (a quarter of the timeout, within these).
const MIN_SWEEP: Duration = Duration::from_millis(10);
const MAX_SWEEP: Duration = Duration::from_secs(60);

/// Since when each loaded thread has been idle; decides which are due for unloading.
#[derive(Debug, Default)]
pub(crate) struct IdleTracker {
    idle_since: HashMap<String, Instant>,
}

/// One loaded thread as the sweeper sees it.
pub(crate) struct Observed {
    pub thread_id: String,
    /// Subscribed, running a turn, or waiting on a server request.
    pub busy: bool,
}

impl IdleTracker {
    /// Records what is loaded at `now` and returns the threads idle for at least `timeout`.
    pub(crate) fn observe(
        &mut self,
        now: Instant,
        timeout: Duration,
        loaded: impl IntoIterator<Item = Observed>,
    ) -> Vec<String> {
        let mut seen = HashMap::with_capacity(self.idle_since.len());
        let mut due = Vec::new();
        for o in loaded {
            if o.busy {
                continue;
            }
            let since = self.idle_since.get(&o.thread_id).copied().unwrap_or(now);
            if now.saturating_duration_since(since) >= timeout {
                due.push(o.thread_id.clone());
            }
            seen.insert(o.thread_id, since);
        }
        // Busy or gone threads start over the next time they are idle.
        self.idle_since = seen;
        due
    }

    /// Forgets a thread (it was unloaded).
    pub(crate) fn forget(&mut self, thread_id: &str) {
        self.idle_since.remove(thread_id);
    }
}

/// Starts the sweeper on the current runtime. It holds the server's parts weakly and stops when
/// `stop` is cancelled or the server is gone, so it never keeps anything alive.
pub(crate) fn spawn(
    threads: &Arc<ThreadManager>,
    outgoing: &Arc<OutgoingMessageSender>,
    timeout: Duration,
    stop: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::debug!("no async runtime: idle threads are not unloaded");
        return None;
    };
    let (threads, outgoing) = (Arc::downgrade(threads), Arc::downgrade(outgoing));
    let period = (timeout / 4).clamp(MIN_SWEEP, MAX_SWEEP);
    Some(runtime.spawn(async move {
        let mut tracker = IdleTracker::default();
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = ticks.tick() => {}
            }
            if !sweep(&mut tracker, &threads, &outgoing, timeout).await {
                break;
            }
        }
    }))
}

/// One pass; false once the server is gone.
async fn sweep(
    tracker: &mut IdleTracker,
    threads: &Weak<ThreadManager>,
    outgoing: &Weak<OutgoingMessageSender>,
    timeout: Duration,
) -> bool {
    let (Some(threads), Some(outgoing)) = (threads.upgrade(), outgoing.upgrade()) else {
        return false;
    };
    let observed = threads.loaded_thread_ids().into_iter().map(|id| Observed {
        busy: outgoing.registry().has_subscribers(&id)
            || threads.has_running_turn(&id)
            || outgoing.has_pending_for_thread(&id),
        thread_id: id,
    });
    let due = tracker.observe(Instant::now(), timeout, observed.collect::<Vec<_>>());
    for thread_id in due {
        tracker.forget(&thread_id);
        // Someone may have subscribed since the look; the thread then stays.
        if outgoing.registry().has_subscribers(&thread_id)
            || outgoing.has_pending_for_thread(&thread_id)
            || !threads.unload_thread(&thread_id).await
        {
            continue;
        }
        tracing::info!(thread_id, "unloaded idle thread");
        outgoing.registry().clear_thread(&thread_id);
        let status = N::ThreadStatusChanged(ThreadStatusChangedNotification {
            thread_id: thread_id.clone(),
            status: ThreadStatus::NotLoaded,
        });
        outgoing.broadcast_notification(&status).await;
        let closed = N::ThreadClosed(ThreadIdNotification { thread_id });
        outgoing.broadcast_notification(&closed).await;
    }
    true
}

#[cfg(test)]
#[path = "idle_unload_tests.rs"]
mod tests;

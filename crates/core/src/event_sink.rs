//! The one way core tells the outside world about a thread: typed notifications.

use tally_protocol::ServerNotification;

/// Receives every notification a thread emits, in order; the app-server fans it out to subscribers.
#[async_trait::async_trait]
pub trait ThreadEventSink: Send + Sync {
    /// Delivers one notification about `thread_id`; returns when it is queued.
    async fn notify(&self, thread_id: &str, notification: ServerNotification);
}

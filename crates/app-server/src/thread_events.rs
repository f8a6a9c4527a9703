//! Core's thread notifications, fanned out to the thread's subscribers through the sender.

use crate::outgoing::OutgoingMessageSender;
use std::sync::Arc;
use tally_core::ThreadEventSink;
use tally_protocol::ServerNotification;

/// Forwards every thread notification from core to the outgoing seam.
pub(crate) struct ThreadEventsToSubscribers(pub Arc<OutgoingMessageSender>);

#[async_trait::async_trait]
impl ThreadEventSink for ThreadEventsToSubscribers {
    async fn notify(&self, thread_id: &str, notification: ServerNotification) {
        self.0
            .send_thread_notification(thread_id, &notification)
            .await;
    }
}

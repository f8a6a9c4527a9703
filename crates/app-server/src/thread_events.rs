//! Core's thread events and requests, fanned out to the thread's subscribers through the sender.

use crate::outgoing::{OutgoingMessageSender, ServerRequestOutcome};
use std::sync::Arc;
use tally_core::{RequestResolution, ThreadEventSink};
use tally_protocol::{ServerNotification, ServerRequest};

/// Forwards every thread notification and request from core to the outgoing seam.
pub(crate) struct ThreadEventsToSubscribers(pub Arc<OutgoingMessageSender>);

#[async_trait::async_trait]
impl ThreadEventSink for ThreadEventsToSubscribers {
    async fn notify(&self, thread_id: &str, notification: ServerNotification) {
        self.0
            .send_thread_notification(thread_id, &notification)
            .await;
    }

    async fn request(&self, thread_id: &str, request: ServerRequest) -> RequestResolution {
        match self.0.request_on_thread(thread_id, request).await {
            ServerRequestOutcome::Answered { response, .. } => {
                RequestResolution::Answered(response)
            }
            ServerRequestOutcome::Refused { .. } => RequestResolution::Refused,
            ServerRequestOutcome::Cancelled => RequestResolution::Cancelled,
        }
    }

    async fn resolve_turn_requests(&self, thread_id: &str, turn_id: &str) {
        self.0.withdraw_turn_requests(thread_id, turn_id).await;
    }

    async fn guardian_review(&self, report: &tally_guardian::ReviewReport) {
        self.0.analytics().track_guardian_review(report);
    }
}

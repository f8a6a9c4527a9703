//! The notifications every kind of turn sends the same way (regular, compaction and a person's
//! own shell command): thread status, token usage, completed items and the `Turn` view.

use crate::clock::now_ms;
use crate::event_sink::ThreadEventSink;
use crate::model::ModelError;
use crate::thread::LoadedThread;
use crate::turn_runner::{turn_error, RESPONSE_GATE_DEADLINE};
use tally_protocol::server_notification::*;
use tally_protocol::types::{ThreadItem, ThreadStatus, Turn, TurnError, TurnItemsView, TurnStatus};
use tally_protocol::ServerNotification;
use tokio::sync::oneshot;

/// Sends one turn's notifications about its thread.
#[derive(Clone, Copy)]
pub(crate) struct TurnEmitter<'a> {
    pub thread: &'a LoadedThread,
    pub sink: &'a dyn ThreadEventSink,
    pub turn_id: &'a str,
}

impl<'a> TurnEmitter<'a> {
    pub fn new(thread: &'a LoadedThread, sink: &'a dyn ThreadEventSink, turn_id: &'a str) -> Self {
        Self {
            thread,
            sink,
            turn_id,
        }
    }

    pub async fn emit(&self, n: ServerNotification) {
        self.sink.notify(&self.thread.id, n).await;
    }

    pub async fn emit_status(&self, status: ThreadStatus) {
        self.emit(ServerNotification::ThreadStatusChanged(
            ThreadStatusChangedNotification {
                thread_id: self.thread.id.clone(),
                status,
            },
        ))
        .await;
    }

    /// How every turn begins: once `gate` fires (the response that started it is sent, or the
    /// deadline passed), the thread turns active and `turn/started` goes out.
    pub async fn start_turn(&self, gate: oneshot::Receiver<()>, started_at_ms: i64) {
        let _ = tokio::time::timeout(RESPONSE_GATE_DEADLINE, gate).await;
        self.emit_status(ThreadStatus::Active {
            active_flags: vec![],
        })
        .await;
        let turn = self.turn_view(started_at_ms, TurnStatus::InProgress, Vec::new(), None);
        self.emit(ServerNotification::TurnStarted(TurnNotification {
            thread_id: self.thread.id.clone(),
            turn,
        }))
        .await;
    }

    /// `thread/tokenUsage/updated` with the thread's usage as it stands.
    pub async fn emit_usage(&self) {
        let token_usage = self.thread.state().token_usage;
        self.emit(ServerNotification::ThreadTokenUsageUpdated(
            ThreadTokenUsageUpdatedNotification {
                thread_id: self.thread.id.clone(),
                turn_id: self.turn_id.to_string(),
                token_usage,
            },
        ))
        .await;
    }

    /// Sends the `error` notification for a model failure and returns the turn's error for it.
    pub async fn emit_model_error(&self, e: &ModelError, will_retry: bool) -> TurnError {
        let error = turn_error(e);
        self.emit(ServerNotification::Error(ErrorNotification {
            error: error.clone(),
            thread_id: self.thread.id.clone(),
            turn_id: self.turn_id.to_string(),
            will_retry,
        }))
        .await;
        error
    }

    /// How every turn ends: the end recorded (in memory and on disk), the thread idle,
    /// `turn/completed`, and only then the thread freed, so a next turn starts after it.
    pub async fn finish_turn(&self, turn: Turn) {
        self.thread.close_turn(&turn);
        self.emit_status(ThreadStatus::Idle).await;
        let turn_id = turn.id.clone();
        self.emit(ServerNotification::TurnCompleted(TurnNotification {
            thread_id: self.thread.id.clone(),
            turn,
        }))
        .await;
        self.thread.free_turn(&turn_id);
    }

    /// Sends `item/started`.
    pub async fn start_item(&self, item: ThreadItem) {
        self.emit(ServerNotification::ItemStarted(ItemStartedNotification {
            item,
            thread_id: self.thread.id.clone(),
            turn_id: self.turn_id.to_string(),
            started_at_ms: now_ms(),
        }))
        .await;
    }

    /// Records the item in the turn, then sends `item/completed`.
    pub async fn complete_item(&self, item: ThreadItem) {
        self.thread.record_item(self.turn_id, &item);
        self.emit(ServerNotification::ItemCompleted(
            ItemCompletedNotification {
                item,
                thread_id: self.thread.id.clone(),
                turn_id: self.turn_id.to_string(),
                completed_at_ms: now_ms(),
                content_token_count: None,
            },
        ))
        .await;
    }

    /// The turn as clients see it; a completed turn's items are a summary, others not loaded.
    pub fn turn_view(
        &self,
        started_at_ms: i64,
        status: TurnStatus,
        items: Vec<ThreadItem>,
        error: Option<TurnError>,
    ) -> Turn {
        let done = status != TurnStatus::InProgress;
        let now = now_ms();
        Turn {
            id: self.turn_id.to_string(),
            root_turn_id: Some(self.turn_id.to_string()),
            items,
            items_view: if status == TurnStatus::Completed {
                TurnItemsView::Summary
            } else {
                TurnItemsView::NotLoaded
            },
            status,
            error,
            started_at: Some(started_at_ms / 1000),
            completed_at: done.then_some(now / 1000),
            duration_ms: done.then_some(now - started_at_ms),
        }
    }
}

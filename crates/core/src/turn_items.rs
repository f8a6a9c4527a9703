//! Items being streamed in one model response: which are open, and what they hold so far.

use crate::clock::{new_id, now_ms};
use crate::model::{ResponseEvent, ResponseItem};
use tally_protocol::server_notification::*;
use tally_protocol::types::ThreadItem;
use tally_protocol::ServerNotification;

/// The open items of one stream, in the order they started.
#[derive(Debug, Default)]
pub(crate) struct InFlightItems {
    open: Vec<OpenItem>,
}

#[derive(Debug)]
struct OpenItem {
    id: String,
    body: OpenBody,
}

#[derive(Debug)]
enum OpenBody {
    Message {
        text: String,
    },
    Reasoning {
        summary: Vec<String>,
        content: Vec<String>,
    },
}

impl OpenItem {
    fn to_item(&self) -> ThreadItem {
        match &self.body {
            OpenBody::Message { text } => ThreadItem::AgentMessage {
                id: self.id.clone(),
                text: text.clone(),
                phase: None,
            },
            OpenBody::Reasoning { summary, content } => ThreadItem::Reasoning {
                id: self.id.clone(),
                summary: summary.clone(),
                content: content.clone(),
            },
        }
    }
}

/// Which kind of item a response item streams as, if any.
fn open_body_for(item: &ResponseItem) -> Option<OpenBody> {
    match item {
        ResponseItem::Message { role, .. } if role == "assistant" => Some(OpenBody::Message {
            text: String::new(),
        }),
        ResponseItem::Reasoning { .. } => Some(OpenBody::Reasoning {
            summary: Vec::new(),
            content: Vec::new(),
        }),
        _ => None,
    }
}

fn item_id(item: &ResponseItem) -> Option<&str> {
    match item {
        ResponseItem::Message { id, .. } => id.as_deref(),
        ResponseItem::Reasoning { id, .. } if !id.is_empty() => Some(id),
        _ => None,
    }
}

fn grow<T: Default>(v: &mut Vec<T>, index: i64) -> usize {
    let i = usize::try_from(index).unwrap_or(0).min(1024);
    while v.len() <= i {
        v.push(T::default());
    }
    i
}

impl InFlightItems {
    /// Applies a stream event, returning the notifications it produces (item starts and deltas).
    pub fn apply(
        &mut self,
        ev: &ResponseEvent,
        thread_id: &str,
        turn_id: &str,
    ) -> Vec<ServerNotification> {
        let mut out = Vec::new();
        let ids = || (thread_id.to_string(), turn_id.to_string());
        match ev {
            ResponseEvent::OutputItemAdded(item) | ResponseEvent::OutputItemDone(item) => {
                if let Some(body) = open_body_for(item) {
                    let id = item_id(item).map(str::to_string);
                    self.ensure_open(id, body, thread_id, turn_id, &mut out);
                }
            }
            ResponseEvent::OutputTextDelta { item_id, delta } => {
                let body = OpenBody::Message {
                    text: String::new(),
                };
                let idx =
                    self.ensure_open(Some(item_id.clone()), body, thread_id, turn_id, &mut out);
                if let OpenBody::Message { text } = &mut self.open[idx].body {
                    text.push_str(delta);
                }
                let (thread_id, turn_id) = ids();
                out.push(ServerNotification::AgentMessageDelta(
                    AgentMessageDeltaNotification {
                        thread_id,
                        turn_id,
                        item_id: self.open[idx].id.clone(),
                        delta: delta.clone(),
                    },
                ));
            }
            ResponseEvent::ReasoningSummaryPartAdded {
                item_id,
                summary_index,
            } => {
                let idx = self.ensure_reasoning(item_id, thread_id, turn_id, &mut out);
                if let OpenBody::Reasoning { summary, .. } = &mut self.open[idx].body {
                    grow(summary, *summary_index);
                }
                let (thread_id, turn_id) = ids();
                out.push(ServerNotification::ReasoningSummaryPartAdded(
                    ReasoningSummaryPartAddedNotification {
                        thread_id,
                        turn_id,
                        item_id: self.open[idx].id.clone(),
                        summary_index: *summary_index,
                    },
                ));
            }
            ResponseEvent::ReasoningSummaryTextDelta {
                item_id,
                summary_index,
                delta,
            } => {
                let idx = self.ensure_reasoning(item_id, thread_id, turn_id, &mut out);
                if let OpenBody::Reasoning { summary, .. } = &mut self.open[idx].body {
                    let i = grow(summary, *summary_index);
                    summary[i].push_str(delta);
                }
                let (thread_id, turn_id) = ids();
                out.push(ServerNotification::ReasoningSummaryTextDelta(
                    ReasoningSummaryTextDeltaNotification {
                        thread_id,
                        turn_id,
                        item_id: self.open[idx].id.clone(),
                        delta: delta.clone(),
                        summary_index: *summary_index,
                    },
                ));
            }
            ResponseEvent::ReasoningTextDelta {
                item_id,
                content_index,
                delta,
            } => {
                let idx = self.ensure_reasoning(item_id, thread_id, turn_id, &mut out);
                if let OpenBody::Reasoning { content, .. } = &mut self.open[idx].body {
                    let i = grow(content, *content_index);
                    content[i].push_str(delta);
                }
                let (thread_id, turn_id) = ids();
                out.push(ServerNotification::ReasoningTextDelta(
                    ReasoningTextDeltaNotification {
                        thread_id,
                        turn_id,
                        item_id: self.open[idx].id.clone(),
                        delta: delta.clone(),
                        content_index: *content_index,
                    },
                ));
            }
            ResponseEvent::Created | ResponseEvent::Completed { .. } => {}
        }
        out
    }

    fn ensure_reasoning(
        &mut self,
        item_id: &str,
        thread_id: &str,
        turn_id: &str,
        out: &mut Vec<ServerNotification>,
    ) -> usize {
        let body = OpenBody::Reasoning {
            summary: Vec::new(),
            content: Vec::new(),
        };
        self.ensure_open(Some(item_id.to_string()), body, thread_id, turn_id, out)
    }

    /// Finds the open item with `id` (or opens it, announcing `item/started`); returns its index.
    fn ensure_open(
        &mut self,
        id: Option<String>,
        body: OpenBody,
        thread_id: &str,
        turn_id: &str,
        out: &mut Vec<ServerNotification>,
    ) -> usize {
        if let Some(i) = self.position(id.as_deref(), &body) {
            return i;
        }
        let id = id
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("msg_{}", new_id()));
        let item = OpenItem { id, body };
        out.push(ServerNotification::ItemStarted(ItemStartedNotification {
            item: item.to_item(),
            thread_id: thread_id.to_string(),
            turn_id: turn_id.to_string(),
            started_at_ms: now_ms(),
        }));
        self.open.push(item);
        self.open.len() - 1
    }

    /// An open item by id, or (when the server gave no id) the latest open item of the same kind.
    fn position(&self, id: Option<&str>, body: &OpenBody) -> Option<usize> {
        match id.filter(|s| !s.is_empty()) {
            Some(id) => self.open.iter().position(|o| o.id == id),
            None => self
                .open
                .iter()
                .rposition(|o| std::mem::discriminant(&o.body) == std::mem::discriminant(body)),
        }
    }

    /// Closes the item a finished response item belongs to, with the server's final content.
    pub fn take_completed(&mut self, done: &ResponseItem) -> Option<ThreadItem> {
        let body = open_body_for(done)?;
        let idx = self.position(item_id(done), &body)?;
        let mut open = self.open.remove(idx);
        match (&mut open.body, done) {
            (OpenBody::Message { text }, ResponseItem::Message { .. }) => {
                if let Some(final_text) = done.message_text() {
                    *text = final_text;
                }
            }
            (OpenBody::Reasoning { summary: s, .. }, ResponseItem::Reasoning { summary, .. }) => {
                let texts: Vec<String> = summary
                    .iter()
                    .filter_map(|p| p["text"].as_str().map(str::to_string))
                    .collect();
                if !texts.is_empty() {
                    *s = texts;
                }
            }
            _ => {}
        }
        Some(open.to_item())
    }

    /// Closes every open item with what it holds so far (the stream was cut or abandoned).
    pub fn drain_open(&mut self) -> Vec<ThreadItem> {
        self.open.drain(..).map(|o| o.to_item()).collect()
    }
}

#[cfg(test)]
#[path = "turn_items_tests.rs"]
mod tests;

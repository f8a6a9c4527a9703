//! The built-in offline model: deterministic, no network, driven by simple rules on the
//! last user message, streaming the same events a Responses server would.

use crate::model::{
    ModelClient, ModelError, ModelRequest, ResponseEvent, ResponseItem, ResponseStream,
};
use futures::StreamExt;
use std::time::Duration;
use tally_protocol::types::TokenUsageBreakdown;

/// Marker in a user message that makes the offline model stream slowly (for interrupts and steers).
pub const SLOW_MARKER: &str = "[slow]";
const SLOW_DELAY: Duration = Duration::from_millis(100);

/// The deterministic offline model.
#[derive(Debug, Default, Clone)]
pub struct OfflineModel;

impl OfflineModel {
    /// The events the model answers `request` with, and the pause between them.
    pub fn plan(&self, request: &ModelRequest) -> (Vec<ResponseEvent>, Option<Duration>) {
        let prompt = last_user_text(&request.input).unwrap_or_default();
        let window = request.metadata.window;
        let reasoning_id = format!("rs_offline_{window}");
        let message_id = format!("msg_offline_{window}");
        let reply = format!("Tally offline model: you said \"{}\".", prompt.trim());
        let mut events = vec![ResponseEvent::Created];
        events.extend(reasoning_events(&reasoning_id));
        events.push(ResponseEvent::OutputItemAdded(ResponseItem::Message {
            id: Some(message_id.clone()),
            role: "assistant".into(),
            content: vec![],
        }));
        for word in reply.split_inclusive(' ') {
            events.push(ResponseEvent::OutputTextDelta {
                item_id: message_id.clone(),
                delta: word.to_string(),
            });
        }
        let mut done = ResponseItem::text_message("assistant", reply.clone());
        if let ResponseItem::Message { id, .. } = &mut done {
            *id = Some(message_id);
        }
        events.push(ResponseEvent::OutputItemDone(done));
        events.push(ResponseEvent::Completed {
            response_id: format!("resp_offline_{window}"),
            usage: Some(usage(request, &reply)),
        });
        let delay = prompt.contains(SLOW_MARKER).then_some(SLOW_DELAY);
        (events, delay)
    }
}

fn reasoning_events(id: &str) -> Vec<ResponseEvent> {
    let summary = "Reading the request.";
    vec![
        ResponseEvent::OutputItemAdded(ResponseItem::Reasoning {
            id: id.to_string(),
            summary: vec![],
            content: None,
            encrypted_content: None,
        }),
        ResponseEvent::ReasoningSummaryPartAdded {
            item_id: id.to_string(),
            summary_index: 0,
        },
        ResponseEvent::ReasoningSummaryTextDelta {
            item_id: id.to_string(),
            summary_index: 0,
            delta: summary.to_string(),
        },
        ResponseEvent::OutputItemDone(ResponseItem::Reasoning {
            id: id.to_string(),
            summary: vec![serde_json::json!({"type": "summary_text", "text": summary})],
            content: None,
            encrypted_content: None,
        }),
    ]
}

fn last_user_text(input: &[ResponseItem]) -> Option<String> {
    input.iter().rev().find_map(|item| match item {
        ResponseItem::Message { role, .. } if role == "user" => item.message_text(),
        _ => None,
    })
}

/// Roughly four characters a token, like a tokenizer would average.
fn usage(request: &ModelRequest, reply: &str) -> TokenUsageBreakdown {
    let input_chars: usize = request
        .prefix
        .iter()
        .chain(request.input.iter())
        .filter_map(ResponseItem::message_text)
        .map(|t| t.len())
        .sum();
    let input_tokens = (input_chars / 4 + 1) as i64;
    let output_tokens = (reply.len() / 4 + 1) as i64;
    TokenUsageBreakdown {
        input_tokens,
        cached_input_tokens: 0,
        cache_write_input_tokens: 0,
        output_tokens,
        reasoning_output_tokens: 4,
        total_tokens: input_tokens + output_tokens,
    }
}

#[async_trait::async_trait]
impl ModelClient for OfflineModel {
    async fn stream(&self, request: ModelRequest) -> Result<ResponseStream, ModelError> {
        let (events, delay) = self.plan(&request);
        let stream = futures::stream::iter(events).then(move |ev| async move {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            Ok(ev)
        });
        Ok(stream.boxed())
    }

    fn stream_max_retries(&self) -> u32 {
        0
    }
}

//! Guardian in core: the reviewer model over the thread's model client, the parent transcript
//! it reads, and one reviewer per loaded thread.

use crate::model::{
    ModelClient, ModelRequest, RequestMetadata, ResponseEvent, ResponseItem, Subagent,
};
use crate::thread::LoadedThread;
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally_guardian::{
    Guardian, GuardianConfig, ModelReply, ReviewModel, ReviewModelError, ReviewSample, Role,
    TokenUsage, TranscriptEntry,
};
use tally_protocol::types::TokenUsageBreakdown;

/// The `x-openai-subagent` value of review sessions.
pub const SUBAGENT_KIND: &str = "guardian";

/// The thread's model client playing the reviewer.
struct ThreadReviewModel {
    client: Arc<dyn ModelClient>,
    model: String,
    reasoning_effort: Option<String>,
    originator: String,
    user_agent: String,
}

#[async_trait::async_trait]
impl ReviewModel for ThreadReviewModel {
    async fn sample(&self, sample: ReviewSample) -> Result<ModelReply, ReviewModelError> {
        let input = sample
            .messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::Developer => "developer",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                ResponseItem::text_message(role, m.text.clone())
            })
            .collect();
        let request = ModelRequest {
            model: self.model.clone(),
            prefix: Vec::new(),
            input,
            tools: Vec::new(),
            reasoning_effort: self.reasoning_effort.clone(),
            output_schema: Some(sample.output_schema),
            metadata: RequestMetadata {
                thread_id: sample.guardian_thread_id,
                turn_id: sample.turn_id,
                originator: self.originator.clone(),
                user_agent: self.user_agent.clone(),
                window: u64::from(sample.attempt),
                subagent: Some(Subagent {
                    kind: SUBAGENT_KIND,
                    parent_thread_id: sample.parent_thread_id,
                }),
                request_kind: crate::model::RequestKind::Turn,
            },
        };
        let asked = Instant::now();
        let mut stream = self
            .client
            .stream(request)
            .await
            .map_err(|e| ReviewModelError(e.to_string()))?;
        let mut streamed = String::new();
        let mut final_text = None;
        let mut first_token: Option<Duration> = None;
        while let Some(event) = stream.next().await {
            match event.map_err(|e| ReviewModelError(e.to_string()))? {
                ResponseEvent::OutputTextDelta { delta, .. } => {
                    first_token.get_or_insert_with(|| asked.elapsed());
                    streamed.push_str(&delta);
                }
                ResponseEvent::OutputItemDone(item @ ResponseItem::Message { .. }) => {
                    first_token.get_or_insert_with(|| asked.elapsed());
                    final_text = item.message_text();
                }
                ResponseEvent::Completed { usage, .. } => {
                    return Ok(ModelReply {
                        text: final_text.unwrap_or(streamed),
                        usage: usage.map(token_usage).unwrap_or_default(),
                        time_to_first_token: first_token,
                    });
                }
                _ => {}
            }
        }
        Err(ReviewModelError(
            "the review stream ended before the response completed".into(),
        ))
    }
}

fn token_usage(u: TokenUsageBreakdown) -> TokenUsage {
    TokenUsage {
        input_tokens: u.input_tokens,
        cached_input_tokens: u.cached_input_tokens,
        cache_write_input_tokens: u.cache_write_input_tokens,
        output_tokens: u.output_tokens,
        reasoning_output_tokens: u.reasoning_output_tokens,
        total_tokens: u.total_tokens,
    }
}

/// The thread's reviewer for its current model; a changed model starts a new one, so a
/// review session never mixes models.
pub(crate) fn for_thread(
    thread: &LoadedThread,
    client: Arc<dyn ModelClient>,
    review_timeout: Duration,
) -> Arc<Guardian> {
    let (config, model) = {
        let state = thread.state();
        let s = &state.settings;
        let mut config = GuardianConfig::new(s.model.clone(), s.provider_id.clone());
        config.review_timeout = review_timeout;
        config.reasoning_effort = s.reasoning_effort.clone();
        let model = ThreadReviewModel {
            client,
            model: s.model.clone(),
            reasoning_effort: s.reasoning_effort.clone(),
            originator: s.originator.clone(),
            user_agent: s.user_agent.clone(),
        };
        (config, model)
    };
    thread.guardian(config, move |config| {
        Arc::new(Guardian::new(config, Arc::new(model)))
    })
}

/// The parent conversation as the reviewer reads it.
pub(crate) fn transcript(history: &[ResponseItem]) -> Vec<TranscriptEntry> {
    history
        .iter()
        .filter_map(|item| match item {
            ResponseItem::Message { role, .. } if role == "user" => {
                item.message_text().map(TranscriptEntry::User)
            }
            ResponseItem::Message { role, .. } if role == "assistant" => {
                item.message_text().map(TranscriptEntry::Assistant)
            }
            ResponseItem::FunctionCall {
                name, arguments, ..
            } => Some(TranscriptEntry::ToolCall {
                name: name.clone(),
                arguments: arguments.clone(),
            }),
            ResponseItem::FunctionCallOutput { output, .. } => {
                Some(TranscriptEntry::ToolOutput(output.clone()))
            }
            _ => None,
        })
        .collect()
}

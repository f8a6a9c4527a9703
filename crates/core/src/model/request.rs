use crate::model::ResponseItem;
use serde_json::Value;

/// One request to the model: everything the Responses body and headers need.
#[derive(Debug, Clone)]
pub struct ModelRequest {
    pub model: String,
    /// Instruction and context items sent before the conversation.
    pub prefix: Vec<ResponseItem>,
    /// The conversation so far, resent in full (`store: false`).
    pub input: Vec<ResponseItem>,
    pub tools: Vec<Value>,
    pub reasoning_effort: Option<String>,
    pub output_schema: Option<Value>,
    pub metadata: RequestMetadata,
}

/// Ids and client identity carried in headers and `client_metadata`.
#[derive(Debug, Clone, Default)]
pub struct RequestMetadata {
    pub thread_id: String,
    pub turn_id: String,
    pub originator: String,
    pub user_agent: String,
    /// Counts requests in the thread, for `x-codex-window-id`.
    pub window: u64,
    /// Set on a sub-agent's requests (`x-openai-subagent`), e.g. a Guardian review session.
    pub subagent: Option<Subagent>,
    /// What the request is for (`request_kind` in `x-codex-turn-metadata`).
    pub request_kind: RequestKind,
}

/// Why a request is made: a turn's sampling, or a compaction of the thread's history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RequestKind {
    #[default]
    Turn,
    Compaction,
}

impl RequestKind {
    /// The `request_kind` spelling in `x-codex-turn-metadata`.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Turn => "turn",
            RequestKind::Compaction => "compaction",
        }
    }
}

/// A sub-agent thread making requests on behalf of a parent thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subagent {
    /// The `x-openai-subagent` value, e.g. `guardian`.
    pub kind: &'static str,
    pub parent_thread_id: String,
}

impl ModelRequest {
    /// The Responses API request body.
    pub fn to_body(&self) -> Value {
        let input: Vec<&ResponseItem> = self.prefix.iter().chain(self.input.iter()).collect();
        let m = &self.metadata;
        let window_id = format!("{}:{}", m.thread_id, m.window);
        let mut reasoning = serde_json::json!({"summary": "auto"});
        if let Some(effort) = &self.reasoning_effort {
            reasoning["effort"] = Value::String(effort.clone());
        }
        let mut body = serde_json::json!({
            "model": self.model,
            "stream": true,
            "store": false,
            "input": input,
            "tools": self.tools,
            "tool_choice": "auto",
            // A compaction asks for text only: no tools, no parallel calls.
            "parallel_tool_calls": m.request_kind != RequestKind::Compaction,
            "reasoning": reasoning,
            "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": match &m.subagent {
                Some(sub) => format!("{}:{}", sub.kind, sub.parent_thread_id),
                None => m.thread_id.clone(),
            },
            "client_metadata": {
                "thread_id": m.thread_id,
                "turn_id": m.turn_id,
                "root_turn_id": m.turn_id,
                "session_id": m.thread_id,
                "x-codex-window-id": window_id,
            },
        });
        if let Some(schema) = &self.output_schema {
            body["text"] = match &m.subagent {
                // A sub-agent's schema leaves fields optional, which strict mode forbids.
                Some(_) => serde_json::json!({
                    "format": {"type": "json_schema", "name": "codex_output_schema", "strict": false, "schema": schema}
                }),
                None => serde_json::json!({
                    "format": {"type": "json_schema", "name": "output", "strict": true, "schema": schema}
                }),
            };
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: RequestKind) -> ModelRequest {
        ModelRequest {
            model: "m".into(),
            prefix: vec![],
            input: vec![ResponseItem::text_message("user", "hi")],
            tools: vec![],
            reasoning_effort: None,
            output_schema: None,
            metadata: RequestMetadata {
                thread_id: "t".into(),
                request_kind: kind,
                ..RequestMetadata::default()
            },
        }
    }

    #[test]
    fn a_compaction_body_allows_no_parallel_tool_calls() {
        let body = request(RequestKind::Compaction).to_body();
        assert_eq!(body["parallel_tool_calls"], false);
        assert_eq!(body["tools"], serde_json::json!([]));
        assert_eq!(
            request(RequestKind::Turn).to_body()["parallel_tool_calls"],
            true
        );
        assert_eq!(RequestKind::Compaction.as_str(), "compaction");
    }
}

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
            "parallel_tool_calls": true,
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

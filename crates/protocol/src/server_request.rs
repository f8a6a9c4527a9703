//! Server-to-client requests, their typed answers, and decoding an answer from a raw result.

use crate::types::{CommandAction, DynamicToolCallOutputContentItem};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A typed request the server sends to a client; serialized as `{"method", "params"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "method", content = "params")]
pub enum ServerRequest {
    #[serde(rename = "item/commandExecution/requestApproval")]
    CommandExecutionRequestApproval(CommandExecutionRequestApprovalParams),
    #[serde(rename = "item/fileChange/requestApproval")]
    FileChangeRequestApproval(FileChangeRequestApprovalParams),
    #[serde(rename = "item/tool/call")]
    DynamicToolCall(DynamicToolCallParams),
    #[serde(rename = "item/tool/requestUserInput")]
    ToolRequestUserInput(ToolRequestUserInputParams),
    #[serde(rename = "account/chatgptAuthTokens/refresh")]
    ChatgptAuthTokensRefresh(ChatgptAuthTokensRefreshParams),
}

/// The typed answer to a `ServerRequest`, one variant per request method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum ServerResponse {
    CommandExecutionRequestApproval(CommandExecutionRequestApprovalResponse),
    FileChangeRequestApproval(FileChangeRequestApprovalResponse),
    DynamicToolCall(DynamicToolCallResponse),
    ToolRequestUserInput(ToolRequestUserInputResponse),
    ChatgptAuthTokensRefresh(ChatgptAuthTokensRefreshResponse),
}

/// A client's `result` did not match the request it answers.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("result does not match {method}: {reason}")]
pub struct ServerResponseError {
    pub method: &'static str,
    pub reason: String,
}

impl ServerRequest {
    /// The wire method name.
    pub fn method(&self) -> &'static str {
        match self {
            ServerRequest::CommandExecutionRequestApproval(_) => {
                "item/commandExecution/requestApproval"
            }
            ServerRequest::FileChangeRequestApproval(_) => "item/fileChange/requestApproval",
            ServerRequest::DynamicToolCall(_) => "item/tool/call",
            ServerRequest::ToolRequestUserInput(_) => "item/tool/requestUserInput",
            ServerRequest::ChatgptAuthTokensRefresh(_) => "account/chatgptAuthTokens/refresh",
        }
    }

    /// The thread this request belongs to, if it is thread-scoped.
    pub fn thread_id(&self) -> Option<&str> {
        match self {
            ServerRequest::CommandExecutionRequestApproval(p) => Some(&p.thread_id),
            ServerRequest::FileChangeRequestApproval(p) => Some(&p.thread_id),
            ServerRequest::DynamicToolCall(p) => Some(&p.thread_id),
            ServerRequest::ToolRequestUserInput(p) => Some(&p.thread_id),
            ServerRequest::ChatgptAuthTokensRefresh(_) => None,
        }
    }

    /// The turn this request belongs to, if it is turn-scoped.
    pub fn turn_id(&self) -> Option<&str> {
        match self {
            ServerRequest::CommandExecutionRequestApproval(p) => Some(&p.turn_id),
            ServerRequest::FileChangeRequestApproval(p) => Some(&p.turn_id),
            ServerRequest::DynamicToolCall(p) => Some(&p.turn_id),
            ServerRequest::ToolRequestUserInput(p) => Some(&p.turn_id),
            ServerRequest::ChatgptAuthTokensRefresh(_) => None,
        }
    }

    /// Decodes the raw JSON-RPC `result` into the typed response matching this request.
    pub fn response_from_result(
        &self,
        result: Value,
    ) -> Result<ServerResponse, ServerResponseError> {
        let method = self.method();
        let wrap = |e: serde_json::Error| ServerResponseError {
            method,
            reason: e.to_string(),
        };
        Ok(match self {
            ServerRequest::CommandExecutionRequestApproval(_) => {
                ServerResponse::CommandExecutionRequestApproval(
                    serde_json::from_value(result).map_err(wrap)?,
                )
            }
            ServerRequest::FileChangeRequestApproval(_) => {
                ServerResponse::FileChangeRequestApproval(
                    serde_json::from_value(result).map_err(wrap)?,
                )
            }
            ServerRequest::DynamicToolCall(_) => {
                ServerResponse::DynamicToolCall(serde_json::from_value(result).map_err(wrap)?)
            }
            ServerRequest::ToolRequestUserInput(_) => {
                ServerResponse::ToolRequestUserInput(serde_json::from_value(result).map_err(wrap)?)
            }
            ServerRequest::ChatgptAuthTokensRefresh(_) => ServerResponse::ChatgptAuthTokensRefresh(
                serde_json::from_value(result).map_err(wrap)?,
            ),
        })
    }
}

/// `item/commandExecution/requestApproval` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandExecutionRequestApprovalParams {
    pub thread_id: String,
    pub turn_id: String,
    pub item_id: String,
    pub started_at_ms: i64,
    pub kind: CommandExecutionApprovalKind,
    pub reason: Option<String>,
    pub command: Option<String>,
    pub cwd: Option<String>,
    pub command_actions: Option<Vec<CommandAction>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposed_execpolicy_amendment: Option<Vec<String>>,
    /// Experimental: the decisions the client may offer, in order (Codex sends it to every client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_decisions: Option<Vec<CommandExecutionApprovalDecision>>,
}

/// What a command approval is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CommandExecutionApprovalKind {
    #[default]
    Command,
    WriteStdin,
    HumanCommand,
}

/// The answer to a command approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CommandExecutionRequestApprovalResponse {
    pub decision: CommandExecutionApprovalDecision,
}

/// A person's decision on a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum CommandExecutionApprovalDecision {
    Accept,
    AcceptForSession,
    AcceptWithExecpolicyAmendment { execpolicy_amendment: Vec<String> },
    ApplyNetworkPolicyAmendment { network_policy_amendment: Value },
    Decline,
    Cancel,
}

/// `item/fileChange/requestApproval` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileChangeRequestApprovalParams {
    pub thread_id: String,
    pub turn_id: String,
    pub item_id: String,
    pub started_at_ms: i64,
    pub reason: Option<String>,
    pub grant_root: Option<String>,
}

/// The answer to a file change approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FileChangeRequestApprovalResponse {
    pub decision: FileChangeApprovalDecision,
}

/// A person's decision on a file change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FileChangeApprovalDecision {
    Accept,
    AcceptForSession,
    Decline,
    Cancel,
}

/// `item/tool/call` params: the client runs one of its dynamic tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DynamicToolCallParams {
    pub thread_id: String,
    pub turn_id: String,
    pub call_id: String,
    pub tool: String,
    pub arguments: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The result of a dynamic tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DynamicToolCallResponse {
    pub content_items: Vec<DynamicToolCallOutputContentItem>,
    pub success: bool,
}

/// `item/tool/requestUserInput` params (experimental): questions the model asks a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolRequestUserInputParams {
    pub thread_id: String,
    pub turn_id: String,
    pub item_id: String,
    pub is_blocking: bool,
    pub questions: Vec<ToolRequestUserInputQuestion>,
}

/// One question of a user-input request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolRequestUserInputQuestion {
    pub id: String,
    pub header: String,
    pub question: String,
    #[serde(default)]
    pub options: Option<Vec<ToolRequestUserInputOption>>,
    /// The person may answer with free text instead of an option.
    #[serde(default)]
    pub is_other: bool,
    /// The answer should not be shown (a password, a token).
    #[serde(default)]
    pub is_secret: bool,
}

/// One selectable option of a question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolRequestUserInputOption {
    pub label: String,
    pub description: String,
}

/// The answers to a user-input request, by question id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolRequestUserInputResponse {
    pub answers: std::collections::BTreeMap<String, ToolRequestUserInputAnswer>,
}

/// A person's answer to one question: the chosen labels or the text they typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolRequestUserInputAnswer {
    pub answers: Vec<String>,
}

/// `account/chatgptAuthTokens/refresh` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatgptAuthTokensRefreshParams {
    pub reason: String,
    pub previous_account_id: Option<String>,
}

/// Fresh tokens from a client that owns them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatgptAuthTokensRefreshResponse {
    pub access_token: String,
    pub chatgpt_account_id: String,
    #[serde(default)]
    pub chatgpt_plan_type: Option<String>,
}

#[cfg(test)]
#[path = "server_request_tests.rs"]
mod tests;

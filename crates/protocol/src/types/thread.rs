use crate::types::{ReasoningEffortValue, Turn};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A thread (conversation) as the protocol shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Thread {
    pub id: String,
    pub session_id: String,
    pub preview: String,
    pub ephemeral: bool,
    pub model_provider: String,
    pub model: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub recency_at: Option<i64>,
    pub status: ThreadStatus,
    pub path: Option<String>,
    pub cwd: String,
    pub cli_version: String,
    pub source: SessionSource,
    pub thread_source: Option<String>,
    pub originator: Option<String>,
    pub forked_from_id: Option<String>,
    pub parent_thread_id: Option<String>,
    pub agent_nickname: Option<String>,
    pub agent_role: Option<String>,
    pub git_info: Option<serde_json::Value>,
    pub name: Option<String>,
    pub project_id: Option<String>,
    pub history_mode: ThreadHistoryMode,
    pub reasoning_effort: Option<ReasoningEffortValue>,
    pub turns: Vec<Turn>,
}

/// Where a thread came from; app-server threads are `vscode` so IDE history lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum SessionSource {
    Cli,
    Vscode,
    Exec,
    AppServer,
    Unknown,
}

/// The `thread/list` `sourceKinds` filter values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ThreadSourceKind {
    Cli,
    Vscode,
    Exec,
    AppServer,
    SubAgent,
    SubAgentReview,
    SubAgentCompact,
    SubAgentThreadSpawn,
    SubAgentOther,
    Unknown,
}

impl ThreadSourceKind {
    /// Whether a thread of `source` matches this filter value.
    pub fn matches(self, source: SessionSource) -> bool {
        matches!(
            (self, source),
            (ThreadSourceKind::Cli, SessionSource::Cli)
                | (ThreadSourceKind::Vscode, SessionSource::Vscode)
                | (ThreadSourceKind::Exec, SessionSource::Exec)
                | (ThreadSourceKind::AppServer, SessionSource::AppServer)
                | (ThreadSourceKind::Unknown, SessionSource::Unknown)
        )
    }
}

/// How a thread's history is paged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ThreadHistoryMode {
    Legacy,
    #[default]
    Paginated,
}

/// Whether a thread is loaded, idle or running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ThreadStatus {
    NotLoaded,
    Idle,
    SystemError,
    #[serde(rename_all = "camelCase")]
    Active {
        active_flags: Vec<ThreadActiveFlag>,
    },
}

/// Why an active thread waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ThreadActiveFlag {
    WaitingOnApproval,
    WaitingOnUserInput,
}

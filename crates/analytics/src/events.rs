//! The events Tally sends, with the names and fields Codex uses (ANALYTICS-EVENTS.md section 3).
//! Serde types only: what goes out. They hold ids, enums, counts, durations and flags, never text.

use serde::Serialize;

/// `app_server_client`: who the client is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppServerClient {
    pub product_client_id: String,
    pub client_name: String,
    pub client_version: Option<String>,
    pub rpc_transport: &'static str,
    pub experimental_api_enabled: Option<bool>,
}

/// `runtime`: what Tally runs on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuntimeInfo {
    pub codex_rs_version: String,
    pub runtime_os: String,
    pub runtime_os_version: String,
    pub runtime_arch: String,
}

/// The thread context every thread-scoped event carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ThreadContext {
    pub thread_source: Option<String>,
    pub subagent_source: Option<String>,
    pub parent_thread_id: Option<String>,
}

/// `codex_thread_initialized`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThreadInitializedEvent {
    pub thread_id: String,
    pub session_id: String,
    pub app_server_client: AppServerClient,
    pub runtime: RuntimeInfo,
    pub model: String,
    pub ephemeral: bool,
    pub is_worktree: Option<bool>,
    #[serde(flatten)]
    pub context: ThreadContext,
    pub initialization_mode: &'static str,
    pub forked_from_thread_id: Option<String>,
    pub created_at: i64,
}

/// `codex_turn_event`: one per user turn, when it completes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnEvent {
    pub thread_id: String,
    pub session_id: String,
    pub turn_id: String,
    pub root_turn_id: String,
    pub app_server_client: AppServerClient,
    pub runtime: RuntimeInfo,
    #[serde(flatten)]
    pub context: ThreadContext,
    pub ephemeral: bool,
    pub initialization_mode: &'static str,
    pub critical_path_status: &'static str,
    pub critical_path_duration_ms: Option<i64>,
    pub critical_path_inference_ms: Option<i64>,
    pub critical_path_sampling_ms: Option<i64>,
    pub critical_path_compaction_ms: Option<i64>,
    pub critical_path_auto_review_ms: Option<i64>,
    pub critical_path_auto_review_overhead_ms: Option<i64>,
    pub critical_path_user_wait_ms: Option<i64>,
    pub critical_path_tools_ms: Option<i64>,
    pub critical_path_overhead_ms: Option<i64>,
    pub critical_path_unknown_ms: Option<i64>,
    pub active_plugin_ids_at_turn_start: Vec<String>,
    pub image_preparations: Vec<String>,
    pub voice_session_id: Option<String>,
    pub turn_trigger: Option<String>,
    pub codex_turn_source: Option<String>,
    pub submission_type: Option<String>,
    pub workspace_kind: Option<String>,
    pub personality: Option<String>,
    pub model: String,
    pub model_provider: String,
    pub sandbox_policy: &'static str,
    pub reasoning_effort: Option<String>,
    pub reasoning_summary: Option<String>,
    pub service_tier: String,
    pub approval_policy: String,
    pub approvals_reviewer: &'static str,
    pub guardian_v2_enabled: bool,
    pub sandbox_network_access: bool,
    pub is_first_turn: bool,
    pub multi_agent_version: &'static str,
    pub collaboration_mode: &'static str,
    pub num_input_images: i64,
    pub status: &'static str,
    pub explicit_client_interrupt_requested_at_ms: Option<i64>,
    pub turn_error: Option<TurnErrorClass>,
    pub codex_error_kind: Option<String>,
    pub codex_error_http_status_code: Option<i64>,
    pub usage_limit_window_minutes: Option<i64>,
    #[serde(flatten)]
    pub counts: TurnToolCounts,
    pub input_tokens: Option<i64>,
    pub cached_input_tokens: Option<i64>,
    pub cache_write_input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub reasoning_output_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub before_first_sampling_ms: i64,
    pub sampling_ms: i64,
    pub compaction_ms: i64,
    pub between_sampling_overhead_ms: i64,
    pub tool_blocking_ms: i64,
    pub after_last_sampling_ms: i64,
    pub sampling_request_count: i64,
    pub sampling_retry_count: i64,
    pub tools_change_count: i64,
    pub duration_ms: Option<i64>,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
}

/// The class of a turn's error: never its message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnErrorClass {
    pub codex_error_kind: Option<String>,
    pub http_status_code: Option<i64>,
}

/// Tool and steer counts of a turn.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TurnToolCounts {
    pub steer_count: i64,
    pub total_tool_call_count: i64,
    pub shell_command_count: i64,
    pub file_change_count: i64,
    pub mcp_tool_call_count: i64,
    pub dynamic_tool_call_count: i64,
    pub subagent_tool_call_count: i64,
    pub web_search_count: i64,
    pub image_generation_count: i64,
}

/// `codex_turn_steer_event`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnSteerEvent {
    pub thread_id: String,
    pub session_id: String,
    pub expected_turn_id: Option<String>,
    pub accepted_turn_id: Option<String>,
    pub app_server_client: AppServerClient,
    pub runtime: RuntimeInfo,
    #[serde(flatten)]
    pub context: ThreadContext,
    pub num_input_images: i64,
    pub result: &'static str,
    pub rejection_reason: Option<&'static str>,
    pub created_at: i64,
}

/// `codex_review_event`: an approval decision with its latency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewEvent {
    pub thread_id: String,
    pub turn_id: String,
    pub item_id: Option<String>,
    pub review_id: String,
    pub app_server_client: AppServerClient,
    pub runtime: RuntimeInfo,
    #[serde(flatten)]
    pub context: ThreadContext,
    pub subject_kind: &'static str,
    pub subject_name: &'static str,
    pub reviewer: &'static str,
    pub trigger: &'static str,
    pub status: &'static str,
    pub resolution: &'static str,
    pub started_at_ms: i64,
    pub completed_at_ms: i64,
    pub duration_ms: Option<i64>,
}

/// `codex_server_request_event` (Tally extension): how a targeted server request resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerRequestEvent {
    pub thread_id: Option<String>,
    pub turn_id: Option<String>,
    pub item_id: Option<String>,
    pub request_method: &'static str,
    pub delivery: &'static str,
    pub delivery_count: i64,
    pub outcome: &'static str,
    pub decision: Option<&'static str>,
    pub tool_success: Option<bool>,
    pub error_code: Option<i64>,
    pub answered_by_original_connection: Option<bool>,
    pub app_server_client: AppServerClient,
    pub runtime: RuntimeInfo,
    pub requested_at_ms: i64,
    pub resolved_at_ms: i64,
    pub latency_ms: i64,
}

/// `codex_thread_archive_event`: unknown values are omitted, not null.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThreadArchiveEvent {
    pub thread_id: String,
    pub action: &'static str,
    pub occurred_at_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_server_client: Option<AppServerClient>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_thread_id: Option<String>,
}

/// `codex_compaction_event`: a compaction's trigger, outcome and context size, never its summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompactionEvent {
    pub thread_id: String,
    pub session_id: String,
    pub turn_id: String,
    pub app_server_client: AppServerClient,
    pub runtime: RuntimeInfo,
    #[serde(flatten)]
    pub context: ThreadContext,
    pub trigger: &'static str,
    pub reason: &'static str,
    pub implementation: &'static str,
    pub phase: &'static str,
    pub strategy: &'static str,
    pub status: &'static str,
    pub voice_session_id: Option<String>,
    pub codex_error_kind: Option<String>,
    pub codex_error_http_status_code: Option<i64>,
    pub usage_limit_window_minutes: Option<i64>,
    pub active_context_tokens_before: i64,
    pub active_context_tokens_after: i64,
    pub retained_image_count: Option<i64>,
    pub compaction_summary_tokens: Option<i64>,
    pub cached_input_tokens: Option<i64>,
    pub cache_write_input_tokens: Option<i64>,
    pub started_at: i64,
    pub completed_at: i64,
    pub duration_ms: Option<i64>,
}

/// `codex_goal_event`: a goal's id and status, never its objective.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GoalEvent {
    pub thread_id: String,
    pub session_id: String,
    pub turn_id: Option<String>,
    pub app_server_client: AppServerClient,
    pub runtime: RuntimeInfo,
    #[serde(flatten)]
    pub context: ThreadContext,
    pub goal_id: String,
    pub event_kind: &'static str,
    pub goal_status: &'static str,
    pub has_token_budget: bool,
    pub cumulative_tokens_accounted: Option<i64>,
    pub cumulative_time_accounted_seconds: Option<i64>,
}

/// `codex_accepted_line_fingerprints`: how many lines a turn's diff added and deleted, in which
/// repository (hashed). No common blocks; `line_fingerprints` is always empty on the wire.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AcceptedLineFingerprintsEvent {
    /// The dotted name Codex repeats inside the params.
    pub event_type: &'static str,
    pub turn_id: String,
    pub thread_id: String,
    pub product_surface: &'static str,
    pub model_slug: String,
    pub completed_at: i64,
    pub repo_hash: Option<String>,
    pub accepted_added_lines: i64,
    pub accepted_deleted_lines: i64,
    pub line_fingerprints: Vec<String>,
}

/// One reduced event, ready to be wrapped with an id and sent.
#[derive(Debug, Clone, PartialEq)]
pub enum AnalyticsEvent {
    ThreadInitialized(ThreadInitializedEvent),
    Turn(Box<TurnEvent>),
    TurnSteer(TurnSteerEvent),
    Review(ReviewEvent),
    ServerRequest(ServerRequestEvent),
    ThreadArchive(ThreadArchiveEvent),
    CommandExecution(Box<CommandExecutionEvent>),
    FileChange(Box<FileChangeEvent>),
    DynamicToolCall(Box<DynamicToolCallEvent>),
    GuardianReview(Box<crate::guardian_events::GuardianReviewEvent>),
    HookRun(crate::hook_events::HookRunEvent),
    Compaction(Box<CompactionEvent>),
    Goal(GoalEvent),
    AcceptedLineFingerprints(AcceptedLineFingerprintsEvent),
    AnalyticsDropped(AnalyticsDroppedEvent),
}

impl AnalyticsEvent {
    /// The wire `event_type`.
    pub fn event_type(&self) -> &'static str {
        match self {
            AnalyticsEvent::ThreadInitialized(_) => "codex_thread_initialized",
            AnalyticsEvent::Turn(_) => "codex_turn_event",
            AnalyticsEvent::TurnSteer(_) => "codex_turn_steer_event",
            AnalyticsEvent::Review(_) => "codex_review_event",
            AnalyticsEvent::ServerRequest(_) => "codex_server_request_event",
            AnalyticsEvent::ThreadArchive(_) => "codex_thread_archive_event",
            AnalyticsEvent::CommandExecution(_) => "codex_command_execution_event",
            AnalyticsEvent::FileChange(_) => "codex_file_change_event",
            AnalyticsEvent::DynamicToolCall(_) => "codex_dynamic_tool_call_event",
            AnalyticsEvent::GuardianReview(_) => "codex_guardian_review",
            AnalyticsEvent::HookRun(_) => "codex_hook_run",
            AnalyticsEvent::Compaction(_) => "codex_compaction_event",
            AnalyticsEvent::Goal(_) => "codex_goal_event",
            AnalyticsEvent::AcceptedLineFingerprints(_) => "codex_accepted_line_fingerprints",
            AnalyticsEvent::AnalyticsDropped(_) => "tally_analytics_dropped",
        }
    }

    /// Whether the event goes in a POST of its own, as Codex sends it
    /// (`codex_accepted_line_fingerprints`).
    pub fn sent_alone(&self) -> bool {
        matches!(self, AnalyticsEvent::AcceptedLineFingerprints(_))
    }

    /// The wire `event_params`.
    pub fn params(&self) -> serde_json::Result<serde_json::Value> {
        match self {
            AnalyticsEvent::ThreadInitialized(e) => serde_json::to_value(e),
            AnalyticsEvent::Turn(e) => serde_json::to_value(e),
            AnalyticsEvent::TurnSteer(e) => serde_json::to_value(e),
            AnalyticsEvent::Review(e) => serde_json::to_value(e),
            AnalyticsEvent::ServerRequest(e) => serde_json::to_value(e),
            AnalyticsEvent::ThreadArchive(e) => serde_json::to_value(e),
            AnalyticsEvent::CommandExecution(e) => serde_json::to_value(e),
            AnalyticsEvent::FileChange(e) => serde_json::to_value(e),
            AnalyticsEvent::DynamicToolCall(e) => serde_json::to_value(e),
            AnalyticsEvent::GuardianReview(e) => serde_json::to_value(e),
            AnalyticsEvent::HookRun(e) => serde_json::to_value(e),
            AnalyticsEvent::Compaction(e) => serde_json::to_value(e),
            AnalyticsEvent::Goal(e) => serde_json::to_value(e),
            AnalyticsEvent::AcceptedLineFingerprints(e) => serde_json::to_value(e),
            AnalyticsEvent::AnalyticsDropped(e) => serde_json::to_value(e),
        }
    }
}

/// The fields every tool item event shares.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolItemBase {
    pub thread_id: String,
    pub session_id: String,
    pub turn_id: String,
    pub root_turn_id: String,
    pub item_id: String,
    pub cell_id: Option<String>,
    pub parent_call_id: Option<String>,
    pub originating_response_id: Option<String>,
    pub subsequent_response_id: Option<String>,
    pub app_server_client: AppServerClient,
    pub runtime: RuntimeInfo,
    #[serde(flatten)]
    pub context: ThreadContext,
    pub tool_name: String,
    pub tool_event_type: &'static str,
    pub started_at_ms: i64,
    pub completed_at_ms: i64,
    pub duration_ms: Option<i64>,
    pub execution_duration_ms: Option<i64>,
    pub review_count: i64,
    pub guardian_review_count: i64,
    pub user_review_count: i64,
    pub final_approval_outcome: &'static str,
    pub terminal_status: &'static str,
    pub failure_kind: Option<&'static str>,
    pub requested_additional_permissions: bool,
    pub requested_network_access: bool,
}

/// `codex_command_execution_event`: never the command, its argv or its output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandExecutionEvent {
    #[serde(flatten)]
    pub base: ToolItemBase,
    pub sandbox_backend: Option<&'static str>,
    pub model_slug: String,
    pub reasoning_effort: Option<String>,
    pub plugin_id: Option<String>,
    pub script_path: Option<String>,
    pub command_execution_source: &'static str,
    pub exit_code: Option<i32>,
    pub command_total_action_count: i64,
    pub command_read_action_count: i64,
    pub command_list_files_action_count: i64,
    pub command_search_action_count: i64,
    pub command_unknown_action_count: i64,
}

/// `codex_file_change_event`: counts by kind, never paths or diff text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileChangeEvent {
    #[serde(flatten)]
    pub base: ToolItemBase,
    pub file_change_count: i64,
    pub file_add_count: i64,
    pub file_update_count: i64,
    pub file_delete_count: i64,
    pub file_move_count: i64,
}

/// `codex_dynamic_tool_call_event`: the tool's name and result shape, never arguments or output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DynamicToolCallEvent {
    #[serde(flatten)]
    pub base: ToolItemBase,
    pub dynamic_tool_name: String,
    pub success: Option<bool>,
    pub output_content_item_count: Option<i64>,
    pub output_text_item_count: Option<i64>,
    pub output_image_item_count: Option<i64>,
    pub output_audio_item_count: Option<i64>,
}

/// `tally_analytics_dropped` (Tally extension): what the pipeline dropped in a window, by stage
/// and reason, so the drops themselves show up where the data goes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalyticsDroppedEvent {
    pub stage: &'static str,
    pub reason: String,
    pub dropped_event_type: Option<String>,
    pub count: u64,
    pub window_start_ms: i64,
    pub window_end_ms: i64,
}

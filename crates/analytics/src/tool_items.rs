//! What tool items become in events: names, counts, outcomes. Derived from the item's kind and
//! status; the command, paths, diffs, arguments and outputs never leave this module.

use crate::events::TurnToolCounts;
use tally_protocol::types::{
    CommandAction, CommandExecutionSource, CommandExecutionStatus,
    DynamicToolCallOutputContentItem, DynamicToolCallStatus, PatchApplyStatus, PatchChangeKind,
    ThreadItem,
};

/// The approval reviews an item had before it completed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReviewSummary {
    pub user_reviews: i64,
    pub guardian_reviews: i64,
    /// (`status`, `resolution`) of the last review, as `codex_review_event` spells them.
    pub last: Option<(&'static str, &'static str)>,
    /// The last review was Guardian's, not a person's.
    pub last_by_guardian: bool,
}

/// The item's kind-specific payload for its event.
pub enum ToolDetails {
    Command {
        source: &'static str,
        exit_code: Option<i32>,
        duration_ms: Option<i64>,
        actions: ActionCounts,
        ran: bool,
    },
    FileChange {
        adds: i64,
        updates: i64,
        deletes: i64,
        moves: i64,
    },
    Dynamic {
        name: String,
        success: Option<bool>,
        duration_ms: Option<i64>,
        outputs: Option<OutputCounts>,
    },
}

/// Parsed command actions by kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct ActionCounts {
    pub total: i64,
    pub read: i64,
    pub list_files: i64,
    pub search: i64,
    pub unknown: i64,
}

/// A dynamic tool's result parts by kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutputCounts {
    pub total: i64,
    pub text: i64,
    pub image: i64,
    pub audio: i64,
}

/// Whether a thread item is a tool item.
pub fn is_tool(item: &ThreadItem) -> bool {
    matches!(
        item,
        ThreadItem::CommandExecution { .. }
            | ThreadItem::FileChange { .. }
            | ThreadItem::DynamicToolCall { .. }
    )
}

/// `tool_name` as events spell it.
pub fn tool_name(item: &ThreadItem) -> Option<String> {
    match item {
        ThreadItem::CommandExecution {
            source: CommandExecutionSource::UserShell,
            ..
        } => Some("user_shell".into()),
        ThreadItem::CommandExecution { .. } => Some("shell".into()),
        ThreadItem::FileChange { .. } => Some("apply_patch".into()),
        ThreadItem::DynamicToolCall { tool, .. } => {
            Some(crate::identifier::identifier_or_other(tool))
        }
        _ => None,
    }
}

/// Adds a completed tool item to its turn's counts.
pub fn count(counts: &mut TurnToolCounts, item: &ThreadItem) {
    let slot = match item {
        ThreadItem::CommandExecution { .. } => &mut counts.shell_command_count,
        ThreadItem::FileChange { .. } => &mut counts.file_change_count,
        ThreadItem::DynamicToolCall { .. } => &mut counts.dynamic_tool_call_count,
        _ => return,
    };
    *slot += 1;
    counts.total_tool_call_count += 1;
}

/// The kind-specific details of a tool item.
pub fn details(item: &ThreadItem) -> Option<ToolDetails> {
    Some(match item {
        ThreadItem::CommandExecution {
            source,
            status,
            command_actions,
            exit_code,
            duration_ms,
            ..
        } => ToolDetails::Command {
            source: source_name(*source),
            exit_code: *exit_code,
            duration_ms: *duration_ms,
            actions: action_counts(command_actions),
            ran: exit_code.is_some() || *status == CommandExecutionStatus::Completed,
        },
        ThreadItem::FileChange { changes, .. } => {
            let mut d = (0, 0, 0, 0);
            for c in changes {
                match &c.kind {
                    PatchChangeKind::Add => d.0 += 1,
                    PatchChangeKind::Update { move_path: Some(_) } => d.3 += 1,
                    PatchChangeKind::Update { move_path: None } => d.1 += 1,
                    PatchChangeKind::Delete => d.2 += 1,
                }
            }
            ToolDetails::FileChange {
                adds: d.0,
                updates: d.1,
                deletes: d.2,
                moves: d.3,
            }
        }
        ThreadItem::DynamicToolCall {
            tool,
            success,
            duration_ms,
            content_items,
            ..
        } => ToolDetails::Dynamic {
            name: crate::identifier::identifier_or_other(tool),
            success: *success,
            duration_ms: *duration_ms,
            outputs: content_items.as_ref().map(|items| output_counts(items)),
        },
        _ => return None,
    })
}

fn source_name(s: CommandExecutionSource) -> &'static str {
    match s {
        CommandExecutionSource::Agent => "agent",
        CommandExecutionSource::UserShell => "userShell",
        CommandExecutionSource::UnifiedExecStartup => "unifiedExecStartup",
        CommandExecutionSource::UnifiedExecInteraction => "unifiedExecInteraction",
    }
}

fn action_counts(actions: &[CommandAction]) -> ActionCounts {
    let mut c = ActionCounts {
        total: actions.len() as i64,
        ..Default::default()
    };
    for a in actions {
        match a {
            CommandAction::Read { .. } => c.read += 1,
            CommandAction::ListFiles { .. } => c.list_files += 1,
            CommandAction::Search { .. } => c.search += 1,
            CommandAction::Unknown { .. } => c.unknown += 1,
        }
    }
    c
}

fn output_counts(items: &[DynamicToolCallOutputContentItem]) -> OutputCounts {
    let mut c = OutputCounts {
        total: items.len() as i64,
        ..Default::default()
    };
    for i in items {
        match i {
            DynamicToolCallOutputContentItem::InputText { .. } => c.text += 1,
            DynamicToolCallOutputContentItem::InputImage { .. } => c.image += 1,
            DynamicToolCallOutputContentItem::InputAudio { .. } => c.audio += 1,
        }
    }
    c
}

/// `final_approval_outcome` from the item's last review (or its absence).
pub fn final_outcome(item: &ThreadItem, review: &ReviewSummary) -> &'static str {
    if review.last_by_guardian {
        return match review.last {
            Some(("approved", _)) => "guardian_approved",
            Some(("aborted", _)) => "guardian_aborted",
            _ => "guardian_denied",
        };
    }
    match review.last {
        Some(("approved", "session_approval")) => "user_approved_for_session",
        Some(("approved", _)) => "user_approved",
        Some(("denied", _)) => "user_denied",
        Some(("aborted", _)) | Some(("timed_out", _)) => "user_aborted",
        Some(_) => "unknown",
        None if matches!(item, ThreadItem::DynamicToolCall { .. }) => "unknown",
        None => "not_needed",
    }
}

/// (`terminal_status`, `failure_kind`) from the item's status; `interrupted` when its turn was.
pub fn terminal(
    item: &ThreadItem,
    review: &ReviewSummary,
    turn_interrupted: bool,
) -> (&'static str, Option<&'static str>) {
    let denied = match review.last {
        Some(("aborted", _)) => Some("approval_aborted"),
        _ => Some("approval_denied"),
    };
    let status = match item {
        ThreadItem::CommandExecution { status, .. } => match status {
            CommandExecutionStatus::Completed => Some(true),
            CommandExecutionStatus::Failed => Some(false),
            CommandExecutionStatus::Declined => None,
            CommandExecutionStatus::InProgress => return ("interrupted", None),
        },
        ThreadItem::FileChange { status, .. } => match status {
            PatchApplyStatus::Completed => Some(true),
            PatchApplyStatus::Failed => Some(false),
            PatchApplyStatus::Declined => None,
            PatchApplyStatus::InProgress => return ("interrupted", None),
        },
        ThreadItem::DynamicToolCall { status, .. } => match status {
            DynamicToolCallStatus::Completed => Some(true),
            DynamicToolCallStatus::Failed => Some(false),
            DynamicToolCallStatus::InProgress => return ("interrupted", None),
        },
        _ => return ("completed", None),
    };
    match status {
        Some(true) => ("completed", None),
        Some(false) if turn_interrupted => ("interrupted", None),
        Some(false) => ("failed", Some("tool_error")),
        None => ("rejected", denied),
    }
}

//! Payload normalization in one place: protocol values to the enums and counts events carry.

use tally_protocol::server_request::{
    CommandExecutionApprovalDecision, FileChangeApprovalDecision,
};
use tally_protocol::types::{
    ApprovalPolicyName, ApprovalsReviewer, AskForApproval, CodexErrorInfo, SandboxPolicy, UserInput,
};
use tally_protocol::{ServerRequest, ServerResponse};

/// `sandbox_policy` as events spell it.
pub fn sandbox_policy_name(p: &SandboxPolicy) -> &'static str {
    match p {
        SandboxPolicy::DangerFullAccess => "full_access",
        SandboxPolicy::ReadOnly { .. } => "read_only",
        SandboxPolicy::ExternalSandbox { .. } => "external_sandbox",
        SandboxPolicy::WorkspaceWrite { .. } => "workspace_write",
    }
}

/// Whether the sandbox allows network access.
pub fn sandbox_network_access(p: &SandboxPolicy) -> bool {
    match p {
        SandboxPolicy::DangerFullAccess => true,
        SandboxPolicy::ReadOnly { network_access } => *network_access,
        SandboxPolicy::WorkspaceWrite { network_access, .. } => *network_access,
        SandboxPolicy::ExternalSandbox { network_access } => {
            network_access.as_bool().unwrap_or(false) || network_access == "enabled"
        }
    }
}

/// `approval_policy` (kebab-case, as config spells it).
pub fn approval_policy_name(p: &AskForApproval) -> &'static str {
    match p {
        AskForApproval::Named(ApprovalPolicyName::Untrusted) => "untrusted",
        AskForApproval::Named(ApprovalPolicyName::OnRequest) => "on-request",
        AskForApproval::Named(ApprovalPolicyName::Never) => "never",
        AskForApproval::Granular { .. } => "granular",
    }
}

/// `approvals_reviewer`.
pub fn reviewer_name(r: ApprovalsReviewer) -> &'static str {
    match r {
        ApprovalsReviewer::User => "user",
        ApprovalsReviewer::AutoReview => "auto_review",
        ApprovalsReviewer::GuardianSubagent => "guardian_subagent",
    }
}

/// Image inputs in a user input list.
pub fn count_images(input: &[UserInput]) -> i64 {
    input
        .iter()
        .filter(|i| matches!(i, UserInput::Image { .. } | UserInput::LocalImage { .. }))
        .count() as i64
}

/// The error kind and HTTP status of a turn error: the class, never the message.
pub fn error_class(info: Option<&CodexErrorInfo>) -> (Option<String>, Option<i64>) {
    let Some(info) = info else {
        return (None, None);
    };
    let status = match info {
        CodexErrorInfo::HttpConnectionFailed { http_status_code }
        | CodexErrorInfo::ResponseStreamConnectionFailed { http_status_code }
        | CodexErrorInfo::ResponseStreamDisconnected { http_status_code }
        | CodexErrorInfo::ResponseTooManyFailedAttempts { http_status_code } => {
            http_status_code.map(i64::from)
        }
        _ => None,
    };
    let kind = serde_json::to_value(info).ok().and_then(|v| match v {
        serde_json::Value::String(s) => Some(to_snake(&s)),
        serde_json::Value::Object(o) => o.keys().next().map(|k| to_snake(k)),
        _ => None,
    });
    (kind, status)
}

fn to_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Ids a server request names: (thread, turn, item).
pub fn request_ids(r: &ServerRequest) -> (Option<String>, Option<String>, Option<String>) {
    match r {
        ServerRequest::CommandExecutionRequestApproval(p) => (
            Some(p.thread_id.clone()),
            Some(p.turn_id.clone()),
            Some(p.item_id.clone()),
        ),
        ServerRequest::FileChangeRequestApproval(p) => (
            Some(p.thread_id.clone()),
            Some(p.turn_id.clone()),
            Some(p.item_id.clone()),
        ),
        ServerRequest::DynamicToolCall(p) => (
            Some(p.thread_id.clone()),
            Some(p.turn_id.clone()),
            Some(p.call_id.clone()),
        ),
        ServerRequest::ToolRequestUserInput(p) => (
            Some(p.thread_id.clone()),
            Some(p.turn_id.clone()),
            Some(p.item_id.clone()),
        ),
        ServerRequest::ChatgptAuthTokensRefresh(_) => (None, None, None),
    }
}

/// What an approval request is about: (`subject_kind`, `subject_name`), or None for non-approvals.
pub fn review_subject(r: &ServerRequest) -> Option<(&'static str, &'static str)> {
    match r {
        ServerRequest::CommandExecutionRequestApproval(_) => {
            Some(("command_execution", "command_execution"))
        }
        ServerRequest::FileChangeRequestApproval(_) => Some(("file_change", "apply_patch")),
        _ => None,
    }
}

/// When the approval request started, as its params say.
pub fn review_started_at_ms(r: &ServerRequest) -> Option<i64> {
    match r {
        ServerRequest::CommandExecutionRequestApproval(p) => Some(p.started_at_ms),
        ServerRequest::FileChangeRequestApproval(p) => Some(p.started_at_ms),
        _ => None,
    }
}

/// A decision in `codex_server_request_event` spelling, and for approvals the review (status, resolution).
pub struct DecisionClass {
    pub decision: Option<&'static str>,
    pub review: Option<(&'static str, &'static str)>,
    pub tool_success: Option<bool>,
}

/// Classifies a typed answer.
pub fn classify_response(r: &ServerResponse) -> DecisionClass {
    use CommandExecutionApprovalDecision as C;
    use FileChangeApprovalDecision as F;
    let approval =
        |decision: &'static str, status: &'static str, resolution: &'static str| DecisionClass {
            decision: Some(decision),
            review: Some((status, resolution)),
            tool_success: None,
        };
    match r {
        ServerResponse::CommandExecutionRequestApproval(a) => match &a.decision {
            C::Accept => approval("accept", "approved", "none"),
            C::AcceptForSession => approval("accept_for_session", "approved", "session_approval"),
            C::AcceptWithExecpolicyAmendment { .. } => approval(
                "accept_with_execpolicy_amendment",
                "approved",
                "exec_policy_amendment",
            ),
            C::ApplyNetworkPolicyAmendment {
                network_policy_amendment,
            } => {
                let denied = network_policy_amendment["action"] == "deny";
                let status = if denied { "denied" } else { "approved" };
                approval(
                    "apply_network_policy_amendment",
                    status,
                    "network_policy_amendment",
                )
            }
            C::Decline => approval("decline", "denied", "none"),
            C::Cancel => approval("cancel", "aborted", "none"),
        },
        ServerResponse::FileChangeRequestApproval(a) => match a.decision {
            F::Accept => approval("accept", "approved", "none"),
            F::AcceptForSession => approval("accept_for_session", "approved", "session_approval"),
            F::Decline => approval("decline", "denied", "none"),
            F::Cancel => approval("cancel", "aborted", "none"),
        },
        ServerResponse::DynamicToolCall(r) => DecisionClass {
            decision: None,
            review: None,
            tool_success: Some(r.success),
        },
        ServerResponse::ToolRequestUserInput(_) | ServerResponse::ChatgptAuthTokensRefresh(_) => {
            DecisionClass {
                decision: None,
                review: None,
                tool_success: None,
            }
        }
    }
}

/// Why a steer was refused, from the error the server answered with.
pub fn steer_rejection_reason(message: &str) -> &'static str {
    if message.contains("no active turn") {
        "no_active_turn"
    } else if message.contains("expected active turn id") {
        "expected_turn_mismatch"
    } else if message.contains("not steerable") && message.contains("review") {
        "non_steerable_review"
    } else if message.contains("not steerable") {
        "non_steerable_compact"
    } else if message.contains("empty") {
        "empty_input"
    } else if message.contains("too large") {
        "input_too_large"
    } else {
        "internal_error"
    }
}

/// Added and deleted lines in the hunks of a unified diff. Hunk headers (`@@ -a,b +c,d @@`) say
/// how many lines each hunk holds, so a removed line that itself starts with `--` still counts and
/// file headers (`---`/`+++`) never do.
pub fn diff_line_counts(diff: &str) -> (i64, i64) {
    let (mut added, mut deleted) = (0i64, 0i64);
    let (mut old_left, mut new_left) = (0u64, 0u64);
    for line in diff.lines() {
        if let Some((old, new)) = hunk_sizes(line) {
            (old_left, new_left) = (old, new);
            continue;
        }
        if old_left == 0 && new_left == 0 {
            continue;
        }
        match line.as_bytes().first() {
            Some(b'+') => {
                added += 1;
                new_left = new_left.saturating_sub(1);
            }
            Some(b'-') => {
                deleted += 1;
                old_left = old_left.saturating_sub(1);
            }
            // A "\ No newline at end of file" marker belongs to the line before it.
            Some(b'\\') => {}
            None | Some(b' ') => {
                old_left = old_left.saturating_sub(1);
                new_left = new_left.saturating_sub(1);
            }
            // Anything else (a `diff --git` line of a malformed hunk) ends the hunk.
            Some(_) => (old_left, new_left) = (0, 0),
        }
    }
    (added, deleted)
}

/// The old and new line counts of a hunk header; a count left out is 1.
fn hunk_sizes(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("@@ -")?;
    let (ranges, _) = rest.split_once(" @@")?;
    let (old, new) = ranges.split_once(" +")?;
    let size = |range: &str| -> Option<u64> {
        match range.split_once(',') {
            Some((_, n)) => n.parse().ok(),
            None => range.parse::<u64>().ok().map(|_| 1),
        }
    };
    Some((size(old)?, size(new)?))
}

#[cfg(test)]
#[path = "normalize_tests.rs"]
mod tests;

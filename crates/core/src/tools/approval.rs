//! When a tool call may run on its own, when it must ask a person, and when it is refused:
//! the approval policy read together with the sandbox, and what was approved for the session.

use super::sandbox;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use tally_protocol::types::{ApprovalPolicyName, AskForApproval, SandboxPolicy};

/// Approvals a person granted with `acceptForSession` (or an accepted execpolicy amendment),
/// kept while the thread is loaded.
#[derive(Debug, Default, Clone)]
pub(crate) struct SessionApprovals {
    /// Commands, and whether the approval covered a run outside the sandbox: an approval of a
    /// sandboxed run does not let the same command run unsandboxed.
    commands: HashMap<String, bool>,
    /// Command prefixes from `acceptWithExecpolicyAmendment`: simple commands starting with one
    /// run, in the sandbox (running outside it still asks).
    prefixes: Vec<Vec<String>>,
    patch_paths: HashSet<PathBuf>,
}

impl SessionApprovals {
    /// Approves `cmd` for the session; `unsandboxed` when the approved run was outside the sandbox.
    pub fn approve_command(&mut self, cmd: &str, unsandboxed: bool) {
        let covered = self.commands.entry(cmd.to_string()).or_insert(false);
        *covered |= unsandboxed;
    }

    /// Allows every simple command starting with `prefix` (an empty prefix allows nothing).
    pub fn approve_prefix(&mut self, prefix: &[String]) {
        if !prefix.is_empty() && !self.prefixes.iter().any(|p| p == prefix) {
            self.prefixes.push(prefix.to_vec());
        }
    }

    /// Whether `cmd` was approved for the session, for a run outside the sandbox when `unsandboxed`.
    pub fn command_approved(&self, cmd: &str, unsandboxed: bool) -> bool {
        self.commands
            .get(cmd)
            .is_some_and(|covers_unsandboxed| *covers_unsandboxed || !unsandboxed)
            || (!unsandboxed
                && self
                    .prefixes
                    .iter()
                    .any(|p| super::commands::starts_with_prefix(cmd, p)))
    }

    pub fn approve_paths(&mut self, paths: &[PathBuf]) {
        self.patch_paths.extend(paths.iter().cloned());
    }

    pub fn paths_approved(&self, paths: &[PathBuf]) -> bool {
        !paths.is_empty() && paths.iter().all(|p| self.patch_paths.contains(p))
    }
}

/// What to do with a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExecDecision {
    /// Run it now, in the sandbox or not.
    Run { sandboxed: bool },
    /// Ask first; if accepted, run it in the sandbox or not.
    Ask {
        reason: Option<String>,
        sandboxed: bool,
    },
    /// Do not run it; the model is told why.
    Reject(String),
}

/// The policy `on-failure` and granular policies are read as: ask only when needed.
fn policy_name(policy: &AskForApproval) -> ApprovalPolicyName {
    match policy {
        AskForApproval::Named(name) => *name,
        AskForApproval::Granular { .. } => ApprovalPolicyName::OnRequest,
    }
}

/// Everything the command decision depends on.
pub(crate) struct ExecContext<'a> {
    pub policy: &'a AskForApproval,
    pub sandbox: &'a SandboxPolicy,
    pub landlock: bool,
    /// The model asked to run outside the sandbox (`sandbox_permissions: require_escalated`).
    pub escalate: bool,
    pub justification: Option<&'a str>,
    pub session: &'a SessionApprovals,
}

/// Decides how a command runs.
pub(crate) fn exec_decision(cmd: &str, cx: &ExecContext<'_>) -> ExecDecision {
    let wants_sandbox = !matches!(
        cx.sandbox,
        SandboxPolicy::DangerFullAccess | SandboxPolicy::ExternalSandbox { .. }
    );
    // Without Landlock a sandboxed run is impossible: a person must vouch for the command.
    let can_sandbox = wants_sandbox && cx.landlock;
    let unenforceable = wants_sandbox && !cx.landlock;
    let sandboxed = can_sandbox && !cx.escalate;
    if cx
        .session
        .command_approved(cmd, !sandboxed && wants_sandbox)
    {
        return ExecDecision::Run { sandboxed };
    }
    let reason = cx
        .justification
        .map(str::to_string)
        .or_else(|| unenforceable.then(|| "the sandbox is not available on this system".into()));
    match policy_name(cx.policy) {
        ApprovalPolicyName::Never if cx.escalate => ExecDecision::Reject(
            "running outside the sandbox needs approval, and the approval policy is never".into(),
        ),
        ApprovalPolicyName::Never if unenforceable => ExecDecision::Reject(
            "the sandbox is not available on this system, and the approval policy is never".into(),
        ),
        ApprovalPolicyName::Never => ExecDecision::Run { sandboxed },
        ApprovalPolicyName::OnRequest if cx.escalate || unenforceable => {
            ExecDecision::Ask { reason, sandboxed }
        }
        ApprovalPolicyName::OnRequest => ExecDecision::Run { sandboxed },
        ApprovalPolicyName::Untrusted
            if super::commands::is_known_safe(cmd) && !cx.escalate && !unenforceable =>
        {
            ExecDecision::Run { sandboxed }
        }
        ApprovalPolicyName::Untrusted => ExecDecision::Ask { reason, sandboxed },
    }
}

/// What to do with a patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatchDecision {
    Apply,
    Ask { reason: Option<String> },
    Reject(String),
}

/// Decides whether a patch touching `paths` (absolute) is applied, asked about, or refused.
/// Tally writes patches itself, so this check is what confines them to the writable roots.
pub(crate) fn patch_decision(
    paths: &[PathBuf],
    policy: &AskForApproval,
    sandbox_policy: &SandboxPolicy,
    cwd: &Path,
    session: &SessionApprovals,
) -> PatchDecision {
    if session.paths_approved(paths) {
        return PatchDecision::Apply;
    }
    let writable = paths
        .iter()
        .all(|p| sandbox::may_write(sandbox_policy, cwd, p));
    let reason = (!writable).then(|| "the patch writes outside the writable roots".to_string());
    match policy_name(policy) {
        ApprovalPolicyName::Untrusted => PatchDecision::Ask { reason },
        ApprovalPolicyName::OnRequest if writable => PatchDecision::Apply,
        ApprovalPolicyName::OnRequest => PatchDecision::Ask { reason },
        ApprovalPolicyName::Never if writable => PatchDecision::Apply,
        ApprovalPolicyName::Never => PatchDecision::Reject(
            "the patch writes outside the writable roots, and the approval policy is never".into(),
        ),
    }
}

#[cfg(test)]
#[path = "approval_tests.rs"]
mod tests;

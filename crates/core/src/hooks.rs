//! Hooks as the app-server sees them: where the system layer lives, `hooks/list` entries, and
//! the wire spellings of the hooks crate's types. Running them is `turn_hooks`.

use std::path::{Path, PathBuf};
use tally_hooks::{discover, DiscoveryRoots, HookEvent, TrustStatus};
use tally_protocol::types::{
    HookErrorInfo, HookEventName, HookHandlerType, HookMetadata, HookSource, HookTrustStatus,
    HooksListEntry,
};

/// The system layer's directory: Tally's counterpart of Codex's `/etc/codex`.
pub fn system_dir() -> Option<PathBuf> {
    cfg!(unix).then(|| PathBuf::from("/etc/tally"))
}

/// Every handler discovered for `cwd` (trusted or not), as `hooks/list` shows it: `warnings`
/// holds every problem as text (as Codex reports them), and `errors` the ones that kept a file,
/// or part of one, from loading, each with its file and the field at fault.
pub fn list(home: &Path, cwd: &Path) -> HooksListEntry {
    let d = discover(&DiscoveryRoots {
        system_dir: system_dir(),
        home: home.to_path_buf(),
        cwd: cwd.to_path_buf(),
    });
    let errors = d
        .errors()
        .map(|w| HookErrorInfo {
            path: w.path.display().to_string(),
            message: w.detail.clone(),
        })
        .collect();
    HooksListEntry {
        cwd: cwd.display().to_string(),
        hooks: d
            .hooks
            .into_iter()
            .map(|h| HookMetadata {
                event_name: wire_event(h.event),
                handler_type: HookHandlerType::Command,
                command: h.handler.command,
                is_async: h.handler.is_async,
                matcher: h.matcher,
                timeout_sec: h.handler.timeout_sec,
                status_message: h.handler.status_message,
                source_path: h.source_path.display().to_string(),
                source: wire_source(h.source),
                display_order: h.display_order,
                enabled: h.enabled,
                is_managed: h.source.is_managed(),
                current_hash: h.current_hash,
                trust_status: match h.trust_status {
                    TrustStatus::Managed => HookTrustStatus::Managed,
                    TrustStatus::Untrusted => HookTrustStatus::Untrusted,
                    TrustStatus::Trusted => HookTrustStatus::Trusted,
                    TrustStatus::Modified => HookTrustStatus::Modified,
                },
                key: h.key,
            })
            .collect(),
        warnings: d.warnings.iter().map(|w| w.message.clone()).collect(),
        errors,
    }
}

/// The wire spelling of an event.
pub(crate) fn wire_event(e: HookEvent) -> HookEventName {
    match e {
        HookEvent::PreModelRequest => HookEventName::PreModelRequest,
        HookEvent::PostModelRequest => HookEventName::PostModelRequest,
        HookEvent::PreToolUse => HookEventName::PreToolUse,
        HookEvent::PermissionRequest => HookEventName::PermissionRequest,
        HookEvent::PostToolUse => HookEventName::PostToolUse,
        HookEvent::PreCompact => HookEventName::PreCompact,
        HookEvent::PostCompact => HookEventName::PostCompact,
        HookEvent::SessionStart => HookEventName::SessionStart,
        HookEvent::SessionEnd => HookEventName::SessionEnd,
        HookEvent::UserPromptSubmit => HookEventName::UserPromptSubmit,
        HookEvent::SubagentStart => HookEventName::SubagentStart,
        HookEvent::SubagentStop => HookEventName::SubagentStop,
        HookEvent::Stop => HookEventName::Stop,
        HookEvent::Interrupt => HookEventName::Interrupt,
    }
}

/// The wire spelling of a layer.
pub(crate) fn wire_source(s: tally_hooks::HookSource) -> HookSource {
    match s {
        tally_hooks::HookSource::System => HookSource::System,
        tally_hooks::HookSource::User => HookSource::User,
        tally_hooks::HookSource::Project => HookSource::Project,
    }
}

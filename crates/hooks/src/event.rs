//! Hook event names in the spellings the hooks crate needs: PascalCase in hooks.json and
//! analytics, snake_case in trust keys and hashes, kebab-case in run ids.

/// One hook event; variants are in the schema's `HookEventName` order, which is also the order
/// in which a file's entries are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookEvent {
    PreModelRequest,
    PostModelRequest,
    PreToolUse,
    PermissionRequest,
    PostToolUse,
    PreCompact,
    PostCompact,
    SessionStart,
    SessionEnd,
    UserPromptSubmit,
    SubagentStart,
    SubagentStop,
    Stop,
    Interrupt,
}

impl HookEvent {
    /// Every event, in listing order.
    pub const ALL: [HookEvent; 14] = [
        HookEvent::PreModelRequest,
        HookEvent::PostModelRequest,
        HookEvent::PreToolUse,
        HookEvent::PermissionRequest,
        HookEvent::PostToolUse,
        HookEvent::PreCompact,
        HookEvent::PostCompact,
        HookEvent::SessionStart,
        HookEvent::SessionEnd,
        HookEvent::UserPromptSubmit,
        HookEvent::SubagentStart,
        HookEvent::SubagentStop,
        HookEvent::Stop,
        HookEvent::Interrupt,
    ];

    /// The hooks.json key and analytics `hook_name`, e.g. `PreToolUse`.
    pub fn pascal(self) -> &'static str {
        match self {
            HookEvent::PreModelRequest => "PreModelRequest",
            HookEvent::PostModelRequest => "PostModelRequest",
            HookEvent::PreToolUse => "PreToolUse",
            HookEvent::PermissionRequest => "PermissionRequest",
            HookEvent::PostToolUse => "PostToolUse",
            HookEvent::PreCompact => "PreCompact",
            HookEvent::PostCompact => "PostCompact",
            HookEvent::SessionStart => "SessionStart",
            HookEvent::SessionEnd => "SessionEnd",
            HookEvent::UserPromptSubmit => "UserPromptSubmit",
            HookEvent::SubagentStart => "SubagentStart",
            HookEvent::SubagentStop => "SubagentStop",
            HookEvent::Stop => "Stop",
            HookEvent::Interrupt => "Interrupt",
        }
    }

    /// The label used in trust keys and hashes, e.g. `pre_tool_use`.
    pub fn snake(self) -> String {
        self.split_words("_")
    }

    /// The prefix of a run id, e.g. `pre-tool-use`.
    pub fn kebab(self) -> String {
        self.split_words("-")
    }

    /// Parses a hooks.json key.
    pub fn from_pascal(name: &str) -> Option<HookEvent> {
        HookEvent::ALL.into_iter().find(|e| e.pascal() == name)
    }

    /// Whether the event's matcher selects handlers; for the others it is ignored (and hashed as absent).
    pub fn uses_matcher(self) -> bool {
        !matches!(
            self,
            HookEvent::UserPromptSubmit
                | HookEvent::Stop
                | HookEvent::Interrupt
                | HookEvent::PreModelRequest
                | HookEvent::PostModelRequest
        )
    }

    fn split_words(self, sep: &str) -> String {
        let mut out = String::new();
        for (i, c) in self.pascal().chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push_str(sep);
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_match_codex() {
        assert_eq!(HookEvent::PreToolUse.snake(), "pre_tool_use");
        assert_eq!(HookEvent::UserPromptSubmit.kebab(), "user-prompt-submit");
        assert_eq!(HookEvent::Stop.snake(), "stop");
        assert_eq!(
            HookEvent::from_pascal("SessionStart"),
            Some(HookEvent::SessionStart)
        );
        assert_eq!(HookEvent::from_pascal("sessionStart"), None);
    }
}

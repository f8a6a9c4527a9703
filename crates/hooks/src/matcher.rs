//! Codex's matcher rule: absent, `""` or `"*"` match everything; `[A-Za-z0-9_|]` only is an
//! exact match against any `|` alternative; anything else is an unanchored regex.

use regex::Regex;

/// A compiled matcher of one group.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Matches every subject.
    All,
    /// Case-sensitive exact match against any alternative.
    Exact(Vec<String>),
    /// Unanchored regex search.
    Regex(Regex),
}

impl Matcher {
    /// Compiles a matcher; the error is the regex's message.
    pub fn compile(text: Option<&str>) -> Result<Matcher, String> {
        let Some(text) = text.filter(|t| !t.is_empty() && *t != "*") else {
            return Ok(Matcher::All);
        };
        if text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '|')
        {
            return Ok(Matcher::Exact(
                text.split('|').map(str::to_string).collect(),
            ));
        }
        Regex::new(text)
            .map(Matcher::Regex)
            .map_err(|e| e.to_string())
    }

    /// Whether any of `subjects` (a canonical name and its aliases) is selected.
    pub fn matches_any(&self, subjects: &[&str]) -> bool {
        match self {
            // Also for events with nothing to match against (UserPromptSubmit, Stop).
            Matcher::All => true,
            Matcher::Exact(alts) => subjects.iter().any(|s| alts.iter().any(|a| a == s)),
            Matcher::Regex(re) => subjects.iter().any(|s| re.is_match(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(t: Option<&str>) -> Matcher {
        Matcher::compile(t).unwrap()
    }

    #[test]
    fn empty_star_and_absent_match_everything() {
        for t in [None, Some(""), Some("*")] {
            assert!(m(t).matches_any(&["Bash"]));
            assert!(m(t).matches_any(&[]));
        }
    }

    #[test]
    fn plain_names_are_exact_and_case_sensitive() {
        assert!(m(Some("Bash")).matches_any(&["Bash"]));
        assert!(!m(Some("Bash")).matches_any(&["BashOutput"]));
        assert!(!m(Some("bash")).matches_any(&["Bash"]));
        assert!(m(Some("Edit|Write")).matches_any(&["apply_patch", "Write", "Edit"]));
    }

    #[test]
    fn other_text_is_an_unanchored_regex() {
        assert!(m(Some("Ba.h")).matches_any(&["BashOutput"]));
        assert!(!m(Some("^Bash$")).matches_any(&["BashOutput"]));
        assert!(m(Some("mcp__.*")).matches_any(&["mcp__fs__read"]));
        assert!(Matcher::compile(Some("(")).is_err());
    }
}

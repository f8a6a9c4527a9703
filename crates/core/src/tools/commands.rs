//! What a shell command looks like to people: its display string, a best-effort reading of its
//! actions, and whether it is known to only read.

use tally_protocol::types::CommandAction;

/// The shell Tally runs commands with.
pub(crate) const SHELL: &str = "/bin/bash";

/// The argv that runs `cmd` in the shell (`-lc` for a login shell, as Codex does).
pub(crate) fn shell_argv(cmd: &str, login: bool) -> Vec<String> {
    let flag = if login { "-lc" } else { "-c" };
    vec![SHELL.to_string(), flag.to_string(), cmd.to_string()]
}

/// The command as clients display it, e.g. `/bin/bash -lc 'touch marker'`.
pub(crate) fn display(argv: &[String]) -> String {
    argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Characters that make a command more than one simple program call.
const SHELL_SYNTAX: &[char] = &[
    ';', '&', '|', '<', '>', '$', '`', '(', ')', '\n', '{', '}', '*', '?', '~', '\\', '"', '\'',
];

/// The words of a simple command, or `None` when it uses shell syntax.
fn simple_words(cmd: &str) -> Option<Vec<&str>> {
    if cmd.contains(SHELL_SYNTAX) {
        return None;
    }
    let words: Vec<&str> = cmd.split_whitespace().collect();
    (!words.is_empty()).then_some(words)
}

/// The execpolicy amendment Tally proposes for `cmd`: the words of a simple command (Codex's
/// `prefix_rule` shape); `None` when the command uses shell syntax.
pub(crate) fn proposed_prefix(cmd: &str) -> Option<Vec<String>> {
    simple_words(cmd).map(|w| w.into_iter().map(str::to_string).collect())
}

/// Whether `cmd` is a simple command whose words start with `prefix` (never an empty prefix).
pub(crate) fn starts_with_prefix(cmd: &str, prefix: &[String]) -> bool {
    !prefix.is_empty()
        && simple_words(cmd).is_some_and(|w| {
            w.len() >= prefix.len() && w.iter().zip(prefix).all(|(a, b)| *a == b.as_str())
        })
}

/// Programs that only read, run without asking under `untrusted`.
const READ_ONLY_PROGRAMS: &[&str] = &[
    "cat", "echo", "false", "grep", "head", "ls", "nl", "pwd", "rg", "stat", "tail", "true",
    "uname", "wc", "whoami", "which",
];

/// Options with which a read-only program runs other programs (ripgrep's preprocessor, its
/// hostname helper, and the decompressors of `--search-zip`).
const RUNS_PROGRAMS: &[&str] = &["--pre", "--hostname-bin", "-z", "--search-zip"];

/// Whether `cmd` is a simple call of a program that only reads.
pub(crate) fn is_known_safe(cmd: &str) -> bool {
    simple_words(cmd).is_some_and(|w| {
        READ_ONLY_PROGRAMS.contains(&w[0])
            && !w[1..].iter().any(|arg| {
                RUNS_PROGRAMS
                    .iter()
                    .any(|o| arg == o || arg.strip_prefix(o).is_some_and(|r| r.starts_with('=')))
                    // Short flags run together (`-iz`) carry `z` too.
                    || (w[0] == "rg" && arg.starts_with('-') && !arg.starts_with("--") && arg.contains('z'))
            })
    })
}

/// A best-effort reading of what `cmd` does, for display.
pub(crate) fn actions(cmd: &str) -> Vec<CommandAction> {
    let command = cmd.to_string();
    let Some(words) = simple_words(cmd) else {
        return vec![CommandAction::Unknown { command }];
    };
    let args: Vec<&str> = words[1..]
        .iter()
        .copied()
        .filter(|a| !a.starts_with('-'))
        .collect();
    let action = match (words[0], args.as_slice()) {
        ("cat" | "head" | "tail" | "nl", [path]) => CommandAction::Read {
            command,
            name: path.rsplit('/').next().unwrap_or(path).to_string(),
            path: path.to_string(),
        },
        ("ls", []) => CommandAction::ListFiles {
            command,
            path: None,
        },
        ("ls", [path]) => CommandAction::ListFiles {
            command,
            path: Some(path.to_string()),
        },
        ("grep" | "rg", [query, rest @ ..]) if rest.len() <= 1 => CommandAction::Search {
            command,
            query: Some(query.to_string()),
            path: rest.first().map(|p| p.to_string()),
        },
        _ => CommandAction::Unknown { command },
    };
    vec![action]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_like_a_shell() {
        let argv = shell_argv("touch marker", true);
        assert_eq!(display(&argv), "/bin/bash -lc 'touch marker'");
        assert_eq!(
            display(&shell_argv("echo 'hi'", false)),
            r"/bin/bash -c 'echo '\''hi'\'''"
        );
    }

    #[test]
    fn only_simple_read_only_calls_are_known_safe() {
        assert!(is_known_safe("ls -la src"));
        assert!(is_known_safe("cat README.md"));
        assert!(!is_known_safe("touch marker"));
        assert!(!is_known_safe("cat a > b"));
        assert!(!is_known_safe("ls; rm -rf x"));
        assert!(!is_known_safe(""));
    }

    #[test]
    fn ripgrep_options_that_run_programs_are_not_read_only() {
        assert!(is_known_safe("rg -n needle src"));
        assert!(is_known_safe("rg --files"));
        for cmd in [
            "rg --pre rm x important.txt",
            "rg --pre=bash x payload.sh",
            "rg --hostname-bin ./evil x",
            "rg -z needle",
            "rg --search-zip needle",
            "rg -iz needle",
        ] {
            assert!(!is_known_safe(cmd), "{cmd}");
        }
    }

    #[test]
    fn actions_read_list_and_search() {
        assert!(
            matches!(&actions("cat src/a.rs")[0], CommandAction::Read { name, .. } if name == "a.rs")
        );
        assert!(matches!(
            &actions("ls")[0],
            CommandAction::ListFiles { path: None, .. }
        ));
        assert!(
            matches!(&actions("rg foo src")[0], CommandAction::Search { query: Some(q), .. } if q == "foo")
        );
        assert!(matches!(
            &actions("make && ls")[0],
            CommandAction::Unknown { .. }
        ));
    }
}

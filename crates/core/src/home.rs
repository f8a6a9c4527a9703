//! Where Tally keeps config and state: `--home`, else `$TALLY_HOME`, else `$CODEX_HOME`, else `~/.tally`.

use std::path::{Path, PathBuf};

/// Resolves the home directory from an explicit flag and the environment.
pub fn resolve_home(flag: Option<&Path>) -> PathBuf {
    resolve_home_from(flag, |k| std::env::var_os(k))
}

fn resolve_home_from(
    flag: Option<&Path>,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    for key in ["TALLY_HOME", "CODEX_HOME"] {
        if let Some(v) = env(key).filter(|v| !v.is_empty()) {
            return PathBuf::from(v);
        }
    }
    let base = env("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    base.join(".tally")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn flag_wins_then_tally_home_then_codex_home_then_dot_tally() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let all = env(&[("TALLY_HOME", "/t"), ("CODEX_HOME", "/c"), ("HOME", "/h")]);
        assert_eq!(
            resolve_home_from(Some(Path::new("/f")), all),
            PathBuf::from("/f")
        );
        assert_eq!(resolve_home_from(None, all), PathBuf::from("/t"));
        let codex = env(&[("CODEX_HOME", "/c"), ("HOME", "/h")]);
        assert_eq!(resolve_home_from(None, codex), PathBuf::from("/c"));
        let home = env(&[("HOME", "/h")]);
        assert_eq!(resolve_home_from(None, home), PathBuf::from("/h/.tally"));
    }
}

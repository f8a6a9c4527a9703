//! `repo_hash` (ANALYTICS-EVENTS.md section 4): the fingerprint hash of the canonical URL of a
//! repository's `origin` remote (else its first remote), read from the git config on disk. The
//! URL itself never leaves this module; outside git, or without remotes, there is no hash.

use sha1::{Digest, Sha1};
use std::path::{Path, PathBuf};

/// `fingerprint_hash(domain, value)`: lowercase hex SHA-1 of `"file-line-v1\0" + domain + "\0" + value`.
pub fn fingerprint_hash(domain: &str, value: &str) -> String {
    let mut h = Sha1::new();
    h.update(b"file-line-v1\0");
    h.update(domain.as_bytes());
    h.update(b"\0");
    h.update(value.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The `repo_hash` of the repository containing `cwd`, if it is in git and has a remote.
pub fn repo_hash(cwd: &Path) -> Option<String> {
    let config = std::fs::read_to_string(git_config_path(cwd)?).ok()?;
    let remotes = remote_urls(&config);
    let url = remotes
        .iter()
        .find(|(name, _)| name == "origin")
        .or_else(|| remotes.first())
        .map(|(_, url)| url.as_str())?;
    Some(fingerprint_hash("repo", &canonical_remote_url(url)))
}

/// The config file of the repository that contains `cwd` (a worktree's points at its common dir).
fn git_config_path(cwd: &Path) -> Option<PathBuf> {
    let dot_git = cwd
        .ancestors()
        .map(|d| d.join(".git"))
        .find(|p| p.exists())?;
    let git_dir = if dot_git.is_dir() {
        dot_git
    } else {
        // A worktree or submodule: `.git` is a file saying `gitdir: <path>`.
        let text = std::fs::read_to_string(&dot_git).ok()?;
        let target = text.trim().strip_prefix("gitdir:")?.trim();
        let base = dot_git.parent()?;
        base.join(target)
    };
    let common = std::fs::read_to_string(git_dir.join("commondir"))
        .ok()
        .map(|c| git_dir.join(c.trim()))
        .unwrap_or(git_dir);
    Some(common.join("config"))
}

/// `(remote name, url)` pairs in file order, from the text of a git config file.
fn remote_urls(config: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut remote: Option<String> = None;
    for line in config.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            remote = line
                .strip_prefix("[remote \"")
                .and_then(|rest| rest.strip_suffix("\"]"))
                .map(str::to_string);
            continue;
        }
        let Some(name) = &remote else { continue };
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim().eq_ignore_ascii_case("url") && !out.iter().any(|(n, _)| n == name) {
            out.push((name.clone(), value.trim().trim_matches('"').to_string()));
        }
    }
    out
}

/// Tally's canonical form of a remote URL, so every spelling of one repository hashes alike:
/// `host/path` with the host lowercased, without scheme, user, port, trailing `/` or `.git`
/// (`https://github.com/o/r.git`, `git@github.com:o/r` and `ssh://git@github.com:22/o/r/` all
/// become `github.com/o/r`). A local path stays a path, minus a trailing `.git`.
pub fn canonical_remote_url(url: &str) -> String {
    let url = url.trim();
    let (host, path) = if let Some((_, rest)) = url.split_once("://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        (Some(authority), path)
    } else {
        match url.split_once(':') {
            // scp-like `user@host:path`, but not a local path that happens to hold a colon.
            Some((authority, path)) if !authority.contains('/') && !authority.is_empty() => {
                (Some(authority), path)
            }
            _ => (None, url),
        }
    };
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    match host {
        Some(authority) => {
            let host = authority.rsplit('@').next().unwrap_or(authority);
            let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
            format!("{host}/{}", path.trim_start_matches('/'))
        }
        None => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_hash_is_sha1_of_the_domain_separated_value() {
        // printf 'file-line-v1\0repo\0github.com/o/r' | sha1sum
        let h = fingerprint_hash("repo", "github.com/o/r");
        assert_eq!(h, "298fea9ce94c2a1d4f858b658f147d471e7c6c7d");
        assert_ne!(h, fingerprint_hash("path", "github.com/o/r"));
    }

    #[test]
    fn every_spelling_of_a_remote_canonicalizes_alike() {
        for url in [
            "https://github.com/o/r.git",
            "https://user:pw@GitHub.com/o/r/",
            "git@github.com:o/r.git",
            "ssh://git@github.com:22/o/r",
        ] {
            assert_eq!(canonical_remote_url(url), "github.com/o/r", "{url}");
        }
        assert_eq!(canonical_remote_url("/srv/git/r.git"), "/srv/git/r");
    }

    #[test]
    fn repo_hash_prefers_origin_and_is_none_outside_git() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(repo_hash(dir.path()), None);
        let git = dir.path().join(".git");
        std::fs::create_dir_all(&git).expect("git dir");
        std::fs::write(git.join("config"), "[core]\n\tbare = false\n").expect("config");
        assert_eq!(repo_hash(dir.path()), None, "no remote, no hash");
        std::fs::write(
            git.join("config"),
            "[remote \"upstream\"]\n\turl = https://example.com/up/r.git\n[remote \"origin\"]\n\turl = git@example.com:me/r.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n",
        )
        .expect("config");
        let sub = dir.path().join("src/deep");
        std::fs::create_dir_all(&sub).expect("subdir");
        assert_eq!(
            repo_hash(&sub),
            Some(fingerprint_hash("repo", "example.com/me/r"))
        );
    }
}

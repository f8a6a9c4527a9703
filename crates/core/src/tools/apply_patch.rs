//! The Codex patch format (`*** Begin Patch` ... `*** End Patch`): parsing, planning the new file
//! contents (nothing is written until every hunk matched), and applying the plan.

use crate::tools::sandbox::normalize;
use std::path::{Path, PathBuf};
use tally_protocol::types::{FileUpdateChange, PatchChangeKind};

/// Why a patch cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum PatchError {
    #[error("invalid patch: {0}")]
    Parse(String),
    #[error("patch does not apply to {path}: {reason}")]
    Apply { path: String, reason: String },
}

/// One file operation of a patch.
#[derive(Debug, Clone, PartialEq)]
enum FileOp {
    Add {
        path: String,
        content: String,
    },
    Delete {
        path: String,
    },
    Update {
        path: String,
        move_to: Option<String>,
        hunks: Vec<Hunk>,
    },
}

/// Lines to find (context and removals) and what replaces them.
#[derive(Debug, Clone, PartialEq, Default)]
struct Hunk {
    anchor: Option<String>,
    old: Vec<String>,
    new: Vec<String>,
    end_of_file: bool,
}

/// A patch's effect on one file, computed before anything is written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlannedChange {
    pub path: PathBuf,
    /// Where an update moves the file to.
    pub move_to: Option<PathBuf>,
    /// The content before (`None`: the file is added).
    pub before: Option<String>,
    /// The content after (`None`: the file is deleted).
    pub after: Option<String>,
}

impl PlannedChange {
    /// Every path this change writes or removes.
    pub fn touched(&self) -> Vec<PathBuf> {
        let mut out = vec![self.path.clone()];
        out.extend(self.move_to.clone());
        out
    }

    /// The change as a `fileChange` item shows it (paths as the patch wrote them, absolute).
    pub fn to_protocol(&self) -> FileUpdateChange {
        let path = self.path.display().to_string();
        let (kind, diff) = match (&self.before, &self.after) {
            (None, Some(after)) => (PatchChangeKind::Add, after.clone()),
            (Some(before), None) => (PatchChangeKind::Delete, before.clone()),
            (before, after) => (
                PatchChangeKind::Update {
                    move_path: self.move_to.as_ref().map(|p| p.display().to_string()),
                },
                unified_diff(
                    before.as_deref().unwrap_or_default(),
                    after.as_deref().unwrap_or_default(),
                    &path,
                    &path,
                ),
            ),
        };
        FileUpdateChange { path, kind, diff }
    }
}

/// A unified diff of two texts with `a/` and `b/` headers.
pub(crate) fn unified_diff(before: &str, after: &str, old_path: &str, new_path: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{old_path}"), &format!("b/{new_path}"))
        .to_string()
}

/// Extracts the patch from an `apply_patch <<'EOF' ... EOF` shell command, if it is one.
pub(crate) fn patch_in_command(cmd: &str) -> Option<&str> {
    let rest = cmd.trim_start().strip_prefix("apply_patch")?;
    let start = rest.find("*** Begin Patch")?;
    let end = rest.find("*** End Patch")? + "*** End Patch".len();
    (end > start).then(|| &rest[start..end])
}

fn parse(patch: &str) -> Result<Vec<FileOp>, PatchError> {
    let err = |m: &str| PatchError::Parse(m.to_string());
    let lines: Vec<&str> = patch.trim().lines().collect();
    if lines.first().map(|l| l.trim()) != Some("*** Begin Patch") {
        return Err(err("the first line must be `*** Begin Patch`"));
    }
    if lines.last().map(|l| l.trim()) != Some("*** End Patch") {
        return Err(err("the last line must be `*** End Patch`"));
    }
    let body = &lines[1..lines.len() - 1];
    let mut ops = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let line = body[i];
        if let Some(path) = line.strip_prefix("*** Add File: ") {
            i += 1;
            let mut content = String::new();
            while i < body.len() && !body[i].starts_with("*** ") {
                let l = body[i]
                    .strip_prefix('+')
                    .ok_or_else(|| err("lines of an added file must start with `+`"))?;
                content.push_str(l);
                content.push('\n');
                i += 1;
            }
            ops.push(FileOp::Add {
                path: path.trim().to_string(),
                content,
            });
        } else if let Some(path) = line.strip_prefix("*** Delete File: ") {
            ops.push(FileOp::Delete {
                path: path.trim().to_string(),
            });
            i += 1;
        } else if let Some(path) = line.strip_prefix("*** Update File: ") {
            i += 1;
            let move_to = match body.get(i).and_then(|l| l.strip_prefix("*** Move to: ")) {
                Some(to) => {
                    i += 1;
                    Some(to.trim().to_string())
                }
                None => None,
            };
            let (hunks, next) = parse_hunks(body, i)?;
            if hunks.is_empty() && move_to.is_none() {
                return Err(err(&format!("update of {} has no hunks", path.trim())));
            }
            i = next;
            ops.push(FileOp::Update {
                path: path.trim().to_string(),
                move_to,
                hunks,
            });
        } else if line.trim().is_empty() {
            i += 1;
        } else {
            return Err(err(&format!("unexpected line: {line:?}")));
        }
    }
    if ops.is_empty() {
        return Err(err("the patch changes no file"));
    }
    Ok(ops)
}

fn parse_hunks(body: &[&str], mut i: usize) -> Result<(Vec<Hunk>, usize), PatchError> {
    let mut hunks = Vec::new();
    let mut current: Option<Hunk> = None;
    while i < body.len() {
        let line = body[i];
        if line.starts_with("*** ") && line.trim() != "*** End of File" {
            break;
        }
        if let Some(anchor) = line.strip_prefix("@@") {
            hunks.extend(current.take());
            let anchor = anchor.trim();
            current = Some(Hunk {
                anchor: (!anchor.is_empty()).then(|| anchor.to_string()),
                ..Hunk::default()
            });
        } else if line.trim() == "*** End of File" {
            current.get_or_insert_with(Hunk::default).end_of_file = true;
        } else {
            let h = current.get_or_insert_with(Hunk::default);
            match line.chars().next() {
                Some('+') => h.new.push(line[1..].to_string()),
                Some('-') => h.old.push(line[1..].to_string()),
                Some(' ') => {
                    h.old.push(line[1..].to_string());
                    h.new.push(line[1..].to_string());
                }
                // Models often drop the space of an empty context line.
                None => {
                    h.old.push(String::new());
                    h.new.push(String::new());
                }
                Some(_) => {
                    return Err(PatchError::Parse(format!(
                        "hunk lines must start with ' ', '+' or '-': {line:?}"
                    )))
                }
            }
        }
        i += 1;
    }
    hunks.extend(current);
    Ok((hunks, i))
}

/// Parses `patch` and computes every file's new content against the disk, relative to `cwd`.
pub(crate) fn plan(patch: &str, cwd: &Path) -> Result<Vec<PlannedChange>, PatchError> {
    let read = |path: &Path, shown: &str| {
        std::fs::read_to_string(path).map_err(|e| PatchError::Apply {
            path: shown.to_string(),
            reason: e.to_string(),
        })
    };
    parse(patch)?
        .into_iter()
        .map(|op| match op {
            // Every path is written exactly as it is checked: `..` resolved by text first, so
            // the kernel never resolves a symlink before a `..` the check already removed.
            FileOp::Add { path, content } => Ok(PlannedChange {
                path: normalize(&cwd.join(&path)),
                move_to: None,
                before: None,
                after: Some(content),
            }),
            FileOp::Delete { path } => {
                let abs = normalize(&cwd.join(&path));
                Ok(PlannedChange {
                    before: Some(read(&abs, &path)?),
                    path: abs,
                    move_to: None,
                    after: None,
                })
            }
            FileOp::Update {
                path,
                move_to,
                hunks,
            } => {
                let abs = normalize(&cwd.join(&path));
                let before = read(&abs, &path)?;
                let after = apply_hunks(&before, &hunks).map_err(|reason| PatchError::Apply {
                    path: path.clone(),
                    reason,
                })?;
                Ok(PlannedChange {
                    path: abs,
                    move_to: move_to.map(|m| normalize(&cwd.join(m))),
                    before: Some(before),
                    after: Some(after),
                })
            }
        })
        .collect()
}

fn apply_hunks(text: &str, hunks: &[Hunk]) -> Result<String, String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut pos = 0;
    for h in hunks {
        if let Some(anchor) = &h.anchor {
            let at = seek(&lines, std::slice::from_ref(anchor), pos, false)
                .ok_or_else(|| format!("cannot find the line {anchor:?}"))?;
            pos = at + 1;
        }
        if h.old.is_empty() {
            // A pure addition goes at the end of the file.
            let at = lines.len();
            lines.splice(at..at, h.new.iter().cloned());
            pos = at + h.new.len();
            continue;
        }
        let at = seek(&lines, &h.old, pos, h.end_of_file)
            .ok_or_else(|| format!("cannot find the lines {:?}", h.old))?;
        lines.splice(at..at + h.old.len(), h.new.iter().cloned());
        pos = at + h.new.len();
    }
    let mut out = lines.join("\n");
    out.push('\n');
    Ok(out)
}

/// Finds `needle` in `lines` from `start`: exactly, then ignoring trailing and then all
/// surrounding whitespace (models reflow indentation).
fn seek(lines: &[String], needle: &[String], start: usize, eof: bool) -> Option<usize> {
    if needle.len() > lines.len() {
        return None;
    }
    let last = lines.len() - needle.len();
    let starts: Vec<usize> = if eof {
        vec![last]
    } else {
        (start.min(last + 1)..=last).collect()
    };
    let eq: [fn(&str, &str) -> bool; 3] = [
        |a, b| a == b,
        |a, b| a.trim_end() == b.trim_end(),
        |a, b| a.trim() == b.trim(),
    ];
    eq.iter().find_map(|same| {
        starts
            .iter()
            .copied()
            .find(|&s| needle.iter().zip(&lines[s..]).all(|(n, l)| same(l, n)))
    })
}

/// Writes a plan to disk.
pub(crate) fn apply(changes: &[PlannedChange]) -> std::io::Result<()> {
    for c in changes {
        match (&c.after, &c.move_to) {
            (None, _) => std::fs::remove_file(&c.path)?,
            (Some(after), to) => {
                let target = to.as_ref().unwrap_or(&c.path);
                if let Some(dir) = target.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(target, after)?;
                if to.is_some() {
                    std::fs::remove_file(&c.path)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "apply_patch_tests.rs"]
mod tests;

//! The whole-turn diff (`turn/diff/updated`): every file a turn's patches touched, from its
//! content before the turn's first change to its content now.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Baselines of the files a turn changed.
#[derive(Debug, Default)]
pub(crate) struct TurnDiff {
    baselines: BTreeMap<PathBuf, Option<String>>,
}

impl TurnDiff {
    /// Remembers `path`'s content before its first change in this turn.
    pub fn track(&mut self, path: &Path, before: Option<&str>) {
        self.baselines
            .entry(path.to_path_buf())
            .or_insert_with(|| before.map(str::to_string));
    }

    /// Whether the turn changed no file.
    pub fn is_empty(&self) -> bool {
        self.baselines.is_empty()
    }

    /// The unified diff of every tracked file against the disk now.
    pub fn diff(&self) -> String {
        let mut out = String::new();
        for (path, before) in &self.baselines {
            let now = std::fs::read_to_string(path).ok();
            if now == *before {
                continue;
            }
            let shown = path.display().to_string();
            out.push_str(&format!("diff --git a/{shown} b/{shown}\n"));
            out.push_str(&super::apply_patch::unified_diff(
                before.as_deref().unwrap_or_default(),
                now.as_deref().unwrap_or_default(),
                &shown,
                &shown,
            ));
        }
        out
    }
}

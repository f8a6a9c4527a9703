//! Agent registrations in a JSON file: the backend of a single collector (by default beside its
//! SQLite database), shared with `tally collector identities` in another process. Each change
//! re-reads the file and replaces it whole (temp file + rename), so a change made by the other
//! process in between is kept.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde::{Deserialize, Serialize};

use crate::agent_identity::parse_ssh_ed25519;
use crate::identity_backend::{Changes, IdentityBackend, StoredRuntime};

#[derive(Serialize, Deserialize, Default)]
struct StoredRegistry {
    runtimes: Vec<StoredRuntime>,
}

/// Registrations kept in one JSON file.
#[derive(Debug)]
pub struct FileIdentities {
    path: PathBuf,
    /// The file's modification time when this process last read or wrote it.
    seen: Mutex<Option<SystemTime>>,
    /// One change at a time in this process (each is read, modify, write).
    writing: tokio::sync::Mutex<()>,
}

impl FileIdentities {
    /// The file at `path` (absent: no registrations yet) and what it holds; `Err` names the file
    /// and what is wrong with it.
    pub fn open(path: PathBuf) -> Result<(Self, Vec<StoredRuntime>), String> {
        let (stored, mtime) = read(&path)?;
        let file = FileIdentities {
            path,
            seen: Mutex::new(mtime),
            writing: tokio::sync::Mutex::new(()),
        };
        Ok((file, stored))
    }

    fn mtime(&self) -> Option<SystemTime> {
        std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
    }

    fn note_seen(&self, mtime: Option<SystemTime>) {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = mtime;
    }

    /// Applies `change` to the runtimes in the file and writes it back.
    async fn change(&self, change: impl FnOnce(&mut Vec<StoredRuntime>)) -> Result<(), String> {
        let _one_at_a_time = self.writing.lock().await;
        let (mut runtimes, _) = read(&self.path)?;
        change(&mut runtimes);
        runtimes.sort_by(|a, b| a.agent_runtime_id.cmp(&b.agent_runtime_id));
        write(&self.path, runtimes)?;
        self.note_seen(self.mtime());
        Ok(())
    }
}

impl IdentityBackend for FileIdentities {
    fn everything(&self) -> BoxFuture<'_, Result<Vec<StoredRuntime>, String>> {
        async move { read(&self.path).map(|(runtimes, _)| runtimes) }.boxed()
    }

    fn runtime<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<StoredRuntime>, String>> {
        async move {
            let (runtimes, _) = read(&self.path)?;
            Ok(runtimes.into_iter().find(|r| r.agent_runtime_id == id))
        }
        .boxed()
    }

    fn changes(&self) -> BoxFuture<'_, Result<Option<Changes>, String>> {
        async move {
            let mtime = self.mtime();
            if mtime == *self.seen.lock().unwrap_or_else(|p| p.into_inner()) {
                return Ok(None);
            }
            let (runtimes, mtime) = read(&self.path)?;
            self.note_seen(mtime);
            Ok(Some(Changes::Everything(runtimes)))
        }
        .boxed()
    }

    fn add_runtime<'a>(&'a self, runtime: &'a StoredRuntime) -> BoxFuture<'a, Result<(), String>> {
        self.change(move |runtimes| {
            runtimes.retain(|r| r.agent_runtime_id != runtime.agent_runtime_id);
            runtimes.push(runtime.clone());
        })
        .boxed()
    }

    fn revoke<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), String>> {
        self.change(move |runtimes| {
            for r in runtimes.iter_mut().filter(|r| r.agent_runtime_id == id) {
                r.revoked = true;
            }
        })
        .boxed()
    }

    fn set_task<'a>(
        &'a self,
        id: &'a str,
        task: &'a str,
        kept: bool,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.change(move |runtimes| {
            for r in runtimes.iter_mut().filter(|r| r.agent_runtime_id == id) {
                r.tasks.retain(|t| t != task);
                if kept {
                    r.tasks.push(task.to_owned());
                    r.tasks.sort();
                }
            }
        })
        .boxed()
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// Reads the file; an absent file holds no registrations. Every key must parse.
fn read(path: &Path) -> Result<(Vec<StoredRuntime>, Option<SystemTime>), String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let stored: StoredRegistry =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(bad) = stored
        .runtimes
        .iter()
        .find(|r| parse_ssh_ed25519(&r.public_key).is_none())
    {
        return Err(format!(
            "{}: runtime {} has an invalid key",
            path.display(),
            bad.agent_runtime_id
        ));
    }
    Ok((stored.runtimes, mtime))
}

/// Replaces the file (temp file + rename, so a reader never sees half of it).
fn write(path: &Path, runtimes: Vec<StoredRuntime>) -> Result<(), String> {
    let stored = StoredRegistry { runtimes };
    let result = serde_json::to_vec_pretty(&stored)
        .map_err(std::io::Error::other)
        .and_then(|bytes| {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, path)
        });
    result.map_err(|e| format!("{}: {e}", path.display()))
}

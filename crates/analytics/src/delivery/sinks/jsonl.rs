//! The JSONL sink: one JSON line per event appended to a file, fsynced per batch.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use super::{EventSink, SinkResult};
use crate::delivery::envelope::EventEnvelope;
use crate::delivery::stats::ErrorClass;

/// Appends events to a local file, for offline use and for tests that read what was sent.
#[derive(Debug, Clone)]
pub struct JsonlSink {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl JsonlSink {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: &Path) -> io::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// The file events are appended to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn append(file: &Mutex<File>, batch: &[u8]) -> io::Result<()> {
    let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
    // One write per batch keeps a batch's lines together. A write that fails half-way is cut
    // back, so the retry (the batch stays in the spool) starts on a line of its own instead of
    // after a torn one; only a crash mid-write leaves a partial last line for a reader to skip.
    let before = file.metadata()?.len();
    let written = file.write_all(batch).and_then(|()| file.sync_data());
    if written.is_err() {
        let _ = file.set_len(before);
    }
    written
}

#[async_trait]
impl EventSink for JsonlSink {
    async fn send(&self, batch: &[EventEnvelope]) -> SinkResult {
        let mut lines = Vec::new();
        for event in batch {
            if serde_json::to_writer(&mut lines, event).is_err() {
                return SinkResult::Rejected(0);
            }
            lines.push(b'\n');
        }
        let file = Arc::clone(&self.file);
        match tokio::task::spawn_blocking(move || append(&file, &lines)).await {
            Ok(Ok(())) => SinkResult::Ok,
            _ => SinkResult::Retryable {
                retry_after: None,
                class: ErrorClass::SinkIo,
            },
        }
    }
}

#[cfg(test)]
#[path = "jsonl_tests.rs"]
mod tests;

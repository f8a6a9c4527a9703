//! WAL checkpoints off the ingest path. SQLite's automatic checkpoint runs inside the writer's
//! commit, so every few batches one ingest request paid for copying the whole WAL into the
//! database file. Here a thread with its own connection copies it after commits instead, and the
//! writer only nudges it.

use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::Duration;

use rusqlite::Connection;

use super::StoreError;

/// WAL length (in frames, i.e. pages) past which the checkpointer waits for the writer so that
/// the WAL is reset: a passive checkpoint never blocks, so under sustained load the WAL could
/// otherwise grow without bound (4096 frames of 16 KiB pages: 64 MiB).
const RESTART_AFTER_FRAMES: i64 = 4_096;

/// Least time between two checkpoints.
const MIN_INTERVAL: Duration = Duration::from_millis(250);

/// The writer's handle: dropping it (with the store) ends the thread.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    nudge: SyncSender<()>,
}

impl Checkpointer {
    /// Starts the thread with `conn` (a connection of its own on the same file).
    pub(crate) fn start(conn: Connection, path: &Path) -> Result<Self, StoreError> {
        // One pending nudge is enough: a checkpoint covers every commit made before it starts.
        let (nudge, rx) = sync_channel(1);
        std::thread::Builder::new()
            .name(format!("sqlite-checkpoint {}", path.display()))
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::Worker(format!("start checkpoint thread: {e}")))?;
        Ok(Checkpointer { nudge })
    }

    /// Asks for a checkpoint after a commit; never blocks the writer.
    pub(crate) fn after_commit(&self) {
        match self.nudge.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) => {}
            Err(TrySendError::Disconnected(())) => {
                tracing::warn!("sqlite checkpoint thread has stopped; the WAL is not being copied")
            }
        }
    }
}

fn run(conn: Connection, rx: Receiver<()>) {
    while rx.recv().is_ok() {
        if let Err(e) = checkpoint(&conn) {
            tracing::warn!(error = %e, "sqlite checkpoint failed; it is retried after the next commit");
        }
        // A checkpoint syncs the database file: one per commit would cost small batches more
        // than the inline checkpoint did. Commits in the meantime leave one nudge pending.
        std::thread::sleep(MIN_INTERVAL);
    }
    // The store is gone: leave a small WAL behind for the next start.
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

/// A passive checkpoint, escalated to RESTART (which waits for the writer, up to the busy
/// timeout) when the WAL has grown past [`RESTART_AFTER_FRAMES`].
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    let wal_frames: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?;
    if wal_frames > RESTART_AFTER_FRAMES {
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))?;
    }
    Ok(())
}

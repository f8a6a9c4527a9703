//! `retention_days` on SQLite: events older than the window are deleted a chunk at a time, each
//! chunk its own transaction on the writer connection, so ingest goes on between chunks. The
//! dedup claims (`event_ids`) stay: a deleted event that is sent again is still a duplicate.
//! Freed pages are reused by later events; the file does not shrink (`VACUUM` does that).

use std::time::Instant;

use rusqlite::params;

use super::sqlite::SqliteStore;
use super::sqlite_schema::event_tables;
use super::{StoreError, Swept};

/// Rows deleted per transaction: small enough that a batch waits at most a few milliseconds.
pub(super) const DELETE_CHUNK: usize = 5_000;
/// Pause between chunks, for the batches waiting for the writer.
const CHUNK_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

impl SqliteStore {
    /// Deletes, `chunk` rows per transaction, every event whose own time (`ts_ms`) is before
    /// `cutoff_ms` and every quarantined event received before it, both found through their
    /// time indexes; stops at `deadline` between chunks. Blocking.
    pub fn delete_before_blocking(
        &self,
        cutoff_ms: i64,
        chunk: usize,
        deadline: Instant,
    ) -> Result<Swept, StoreError> {
        let chunk = chunk.max(1);
        let limit = i64::try_from(chunk).unwrap_or(i64::MAX);
        let mut swept = Swept::default();
        for (table, time) in retention_tables() {
            let sql = format!(
                "DELETE FROM {table} WHERE rowid IN \
                 (SELECT rowid FROM {table} WHERE {time} < ?1 LIMIT ?2)"
            );
            loop {
                if Instant::now() >= deadline {
                    return Ok(swept);
                }
                let n = self.in_write_transaction(|tx| {
                    Ok(tx
                        .prepare_cached(&sql)?
                        .execute(params![cutoff_ms, limit])?)
                })?;
                swept.deleted += n as u64;
                if n < chunk {
                    break;
                }
                // The writer's lock is not fair: without a pause this loop would take it back
                // before a batch waiting for it woke up.
                std::thread::sleep(CHUNK_PAUSE);
            }
        }
        swept.done = true;
        Ok(swept)
    }
}

/// Each table retention deletes from, with the time it goes by.
fn retention_tables() -> impl Iterator<Item = (&'static str, &'static str)> {
    event_tables()
        .map(|t| (t, "ts_ms"))
        .chain([("rejects", "received_at_ms")])
}

#[cfg(test)]
#[path = "sqlite_retention_tests.rs"]
mod tests;

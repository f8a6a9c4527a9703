//! The embedded engine: one SQLite file in WAL mode, a writer connection (one transaction per
//! batch) and a reader connection for reports, both used from blocking threads.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::sqlite_insert::BorrowingInsert;
use super::sqlite_schema::MIGRATIONS;
use super::{EventStore, IngestBatch, InsertOutcome, StoreError};
use crate::config::{SqliteConfig, Synchronous};
use crate::dedup::hex;
use crate::event::{IdSource, IncomingEvent, RejectedEvent};
use crate::family::{TypedValue, FAMILIES};
use crate::report::{Report, ReportQuery};

/// SQLite-backed [`EventStore`].
#[derive(Clone)]
pub struct SqliteStore {
    writer: Arc<Mutex<Writer>>,
    reader: Arc<Mutex<Connection>>,
    /// The database file, which `/readyz` opens on its own.
    path: Arc<Path>,
}

/// The writer connection and what its writes need. Field order matters: the statements are
/// finalized before the connection closes.
struct Writer {
    batch: BatchWriter,
    conn: Connection,
}

/// What writing a batch needs besides the transaction.
struct BatchWriter {
    /// The event INSERTs (one per family, then the untyped one), prepared on first use.
    inserts: Vec<Option<BorrowingInsert>>,
    /// The INSERT that claims an id, prepared on first use.
    claim: Option<BorrowingInsert>,
    /// `legacy_derived_ids` holds ids (schema version 3), so derived ids are looked up there too.
    legacy_derived_ids: bool,
}

impl Writer {
    fn new(conn: Connection) -> Result<Self, StoreError> {
        let legacy_derived_ids = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM legacy_derived_ids)",
            [],
            |r| r.get(0),
        )?;
        Ok(Writer {
            batch: BatchWriter {
                inserts: (0..=FAMILIES.len()).map(|_| None).collect(),
                claim: None,
                legacy_derived_ids,
            },
            conn,
        })
    }

    /// Runs `write` in one transaction, committed when it succeeds and rolled back otherwise.
    fn in_transaction<T>(
        &mut self,
        write: impl FnOnce(&Connection, &mut BatchWriter) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = self.conn.transaction()?;
        let value = write(&tx, &mut self.batch)?;
        tx.commit()?;
        Ok(value)
    }
}

#[cfg(test)]
impl std::ops::Deref for Writer {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

impl SqliteStore {
    /// Opens (creating and migrating) the database; blocking.
    pub fn open(config: &SqliteConfig) -> Result<Self, StoreError> {
        if let Some(dir) = config.path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let mut writer = open_connection(&config.path, config, WRITER_CACHE_KIB)?;
        migrate(&mut writer)?;
        let writer = Writer::new(writer)?;
        let reader = open_connection(&config.path, config, READER_CACHE_KIB)?;
        Ok(SqliteStore {
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
            path: Arc::from(config.path.as_path()),
        })
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let conn = lock(&self.reader)?;
        Ok(current_version(&conn)?)
    }

    /// Writes a batch in one transaction; blocking.
    pub fn insert_batch_blocking(&self, batch: &IngestBatch) -> Result<InsertOutcome, StoreError> {
        lock(&self.writer)?.in_transaction(|tx, writer| writer.write(tx, batch))
    }

    /// Writes several batches in one transaction (one fsync). If any of them fails the whole
    /// transaction is rolled back and each batch is written again in a transaction of its own, so
    /// a failing batch fails alone; blocking. (Savepoints per batch would give the same isolation
    /// but copy every page they touch into a sub-journal on the common, all-good path.)
    pub fn insert_batches_blocking(
        &self,
        batches: &[IngestBatch],
    ) -> Vec<Result<InsertOutcome, StoreError>> {
        match self.insert_group(batches) {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(e) if batches.len() == 1 => vec![Err(e)],
            Err(_) => batches
                .iter()
                .map(|b| self.insert_batch_blocking(b))
                .collect(),
        }
    }

    fn insert_group(&self, batches: &[IngestBatch]) -> Result<Vec<InsertOutcome>, StoreError> {
        lock(&self.writer)?
            .in_transaction(|tx, writer| batches.iter().map(|b| writer.write(tx, b)).collect())
    }

    /// Runs `f` in one write transaction on the writer connection (between batches); blocking.
    pub(crate) fn in_write_transaction<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        lock(&self.writer)?.in_transaction(|tx, _| f(tx))
    }

    /// Whether the file answers a read, on a connection of its own: the reader may be busy with
    /// a long report, and a busy collector is still ready. Blocking.
    fn answers(&self) -> Result<(), StoreError> {
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&*self.path, flags)?;
        conn.busy_timeout(Duration::from_secs(1))?;
        conn.query_row("SELECT COUNT(*) FROM schema_version", [], |r| {
            r.get::<_, i64>(0)
        })?;
        Ok(())
    }

    /// Runs `f` on the reader connection; blocking.
    pub(crate) fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = lock(&self.reader)?;
        f(&conn)
    }
}

impl EventStore for SqliteStore {
    fn insert_batch(&self, batch: IngestBatch) -> BoxFuture<'_, Result<InsertOutcome, StoreError>> {
        let store = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || store.insert_batch_blocking(&batch))
                .await
                .map_err(|e| StoreError::Worker(e.to_string()))?
        })
    }

    fn insert_batches(
        &self,
        batches: Vec<IngestBatch>,
    ) -> BoxFuture<'_, Vec<Result<InsertOutcome, StoreError>>> {
        let store = self.clone();
        let n = batches.len();
        Box::pin(async move {
            match tokio::task::spawn_blocking(move || store.insert_batches_blocking(&batches)).await
            {
                Ok(results) => results,
                Err(e) => (0..n)
                    .map(|_| Err(StoreError::Worker(e.to_string())))
                    .collect(),
            }
        })
    }

    fn delete_before(
        &self,
        cutoff_ms: i64,
        budget: Duration,
    ) -> BoxFuture<'_, Result<super::Swept, StoreError>> {
        let store = self.clone();
        let deadline = Instant::now() + budget;
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let chunk = super::sqlite_retention::DELETE_CHUNK;
                store.delete_before_blocking(cutoff_ms, chunk, deadline)
            })
            .await
            .map_err(|e| StoreError::Worker(e.to_string()))?
        })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        let store = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || store.answers())
                .await
                .map_err(|e| StoreError::Worker(e.to_string()))?
        })
    }

    fn report(&self, query: ReportQuery) -> BoxFuture<'_, Result<Report, StoreError>> {
        let store = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                store.with_reader(|conn| super::sqlite_report::build(conn, &query))
            })
            .await
            .map_err(|e| StoreError::Worker(e.to_string()))?
        })
    }

    fn engine(&self) -> &'static str {
        "sqlite"
    }
}

fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, StoreError> {
    m.lock()
        .map_err(|_| StoreError::Worker("sqlite connection lock poisoned".into()))
}

/// Page cache of the writer. It appends at the right edge of each tree and finds ids through the
/// memory-mapped file, so a large cache only costs it fresh memory to fault in and a larger table
/// to walk at each commit (a 64 MiB cache made ingest ~6% slower than this one, side by side).
const WRITER_CACHE_KIB: u32 = 16 * 1024;

/// Page cache of the reader: reports read the same index and table pages query after query.
const READER_CACHE_KIB: u32 = 64 * 1024;

pub(crate) fn open_connection(
    path: &Path,
    config: &SqliteConfig,
    cache_kib: u32,
) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    // Takes effect only while the file is new, so it goes before WAL mode and the first table.
    conn.execute_batch(&format!("PRAGMA page_size = {}", config.page_size))?;
    conn.busy_timeout(Duration::from_millis(config.busy_timeout_ms))?;
    let mode = switch_to_wal(&conn, config.busy_timeout_ms)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Schema(format!(
            "could not switch {} to WAL (journal_mode is {mode})",
            path.display()
        )));
    }
    let sync = match config.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {sync}; PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -{cache_kib}; PRAGMA wal_autocheckpoint = 4000;"
    ))?;
    // Reports look rows up through the `ts_ms` indexes; mapped pages are read in place instead of
    // copied out of the OS cache one page per row.
    let _: i64 = conn.query_row("PRAGMA mmap_size = 1073741824", [], |r| r.get(0))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Switches the file to WAL and says the journal mode it is in. SQLite answers a lock conflict
/// on this pragma at once, without the busy handler (another process creating the same file, say),
/// so it is tried again until `busy_timeout_ms` has passed.
fn switch_to_wal(conn: &Connection, busy_timeout_ms: u64) -> Result<String, rusqlite::Error> {
    let deadline = Instant::now() + Duration::from_millis(busy_timeout_ms);
    loop {
        // `journal_mode` returns a row, so it is read rather than executed.
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            answer => return answer,
        }
    }
}

fn current_version(conn: &Connection) -> Result<i64, rusqlite::Error> {
    let exists: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Ok(0);
    }
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )
}

/// Applies every migration newer than the database, each in its own transaction.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version INTEGER PRIMARY KEY,
            applied_at_ms INTEGER NOT NULL
        )",
    )?;
    let current = current_version(conn)?;
    let latest = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if current > latest {
        return Err(StoreError::Schema(format!(
            "database schema version {current} is newer than this collector's {latest}; \
             upgrade the collector"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        // Another process (a collector starting, `tally collector identities`) may be migrating
        // the same file: take the write lock first, then skip what it has applied meanwhile.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if current_version(&tx)? >= *version {
            continue;
        }
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Schema(format!("migration {version} failed: {e}")))?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at_ms) VALUES (?1, ?2)",
            params![version, crate::time::now_ms()],
        )?;
        tx.commit()?;
    }
    Ok(())
}

/// The common columns every typed table and the raw `events` table have, in binding order.
const COMMON_COLUMNS: [&str; 8] = [
    "account",
    "event_id",
    "id_source",
    "event_type",
    "received_at_ms",
    "ts_ms",
    "client",
    "params",
];

/// The INSERT statement of each family (same order as `FAMILIES`), then of the untyped `events`
/// table, built once.
fn insert_sql() -> &'static [String] {
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    SQL.get_or_init(|| {
        let typed = FAMILIES.iter().map(|f| (f.table, f.columns));
        typed
            .chain([("events", &[][..])])
            .map(|(table, columns)| {
                let mut cols = COMMON_COLUMNS.to_vec();
                cols.extend(columns.iter().map(|c| c.name));
                let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
                format!(
                    "INSERT INTO {table} ({}) VALUES ({})",
                    cols.join(", "),
                    marks.join(", ")
                )
            })
            .collect()
    })
}

impl BatchWriter {
    /// Stores each event once: its id goes into `event_ids` first (a repeat is a duplicate), then
    /// the event into its family's table, or into `events` when its type has none.
    fn write(&mut self, tx: &Connection, batch: &IngestBatch) -> Result<InsertOutcome, StoreError> {
        let mut outcome = InsertOutcome::default();
        for event in &batch.events {
            if !self.claim(tx, event)? {
                outcome.duplicates += 1;
                continue;
            }
            outcome.inserted += 1;
            let family = event.family;
            let at = family.unwrap_or(FAMILIES.len());
            let (Some(slot), Some(sql)) = (self.inserts.get_mut(at), insert_sql().get(at)) else {
                return Err(StoreError::Worker(format!("no INSERT for table {at}")));
            };
            let insert = match slot {
                Some(insert) => insert,
                None => slot.insert(BorrowingInsert::prepare(tx, sql)?),
            };
            let columns = family
                .and_then(|i| FAMILIES.get(i))
                .map_or(0, |f| f.columns.len());
            insert.execute(event_values(event, columns))?;
            outcome.untyped += usize::from(family.is_none());
        }
        write_rejects(tx, batch, &mut outcome)?;
        Ok(outcome)
    }

    /// Claims the event's id; false when it was claimed before (the event is a duplicate).
    fn claim(&mut self, tx: &Connection, event: &IncomingEvent) -> Result<bool, StoreError> {
        let (account, id) = (&*event.account, event.event_id.as_str());
        if self.legacy_derived_ids && event.id_source == IdSource::Derived {
            let mut legacy = tx.prepare_cached(
                "SELECT 1 FROM legacy_derived_ids WHERE account = ?1 AND event_id = ?2",
            )?;
            if legacy.exists(params![account, id])? {
                return Ok(false);
            }
        }
        let claim = match &mut self.claim {
            Some(claim) => claim,
            None => self.claim.insert(BorrowingInsert::prepare(
                tx,
                "INSERT OR IGNORE INTO event_ids (account, at_ms, event_id) VALUES (?1, ?2, ?3)",
            )?),
        };
        let values = [
            ValueRef::Text(account.as_bytes()),
            ValueRef::Integer(event.claim_at_ms),
            ValueRef::Text(id.as_bytes()),
        ];
        Ok(claim.execute(values)? == 1)
    }
}

/// Quarantines the batch's rejected events (a retried batch's are kept once).
fn write_rejects(
    tx: &Connection,
    batch: &IngestBatch,
    outcome: &mut InsertOutcome,
) -> Result<(), StoreError> {
    if !batch.rejects.is_empty() {
        let mut insert_reject = tx.prepare_cached(
            "INSERT OR IGNORE INTO rejects
                (reject_key, received_at_ms, account, batch_index, event_type, field, reason, raw)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for reject in &batch.rejects {
            let index = i64::try_from(reject.index).unwrap_or(i64::MAX);
            outcome.quarantined += insert_reject.execute(params![
                reject_key(reject),
                reject.received_at_ms,
                reject.account,
                index,
                reject.event_type,
                reject.field,
                reject.reason,
                reject.raw,
            ])?;
        }
    }
    Ok(())
}

/// A retried batch must not quarantine the same bad event twice: key = hash(account, raw, reason).
pub(crate) fn reject_key(reject: &RejectedEvent) -> String {
    let mut h = Sha256::new();
    h.update(reject.account.as_bytes());
    h.update([0]);
    h.update(reject.raw.as_bytes());
    h.update([0]);
    h.update(reject.field.as_bytes());
    h.update([0]);
    h.update(reject.reason.as_bytes());
    hex(&h.finalize())
}

/// The common columns (in [`COMMON_COLUMNS`] order) and then `typed_columns` typed values
/// (missing ones as NULL), as bound to an event INSERT.
fn event_values(event: &IncomingEvent, typed_columns: usize) -> impl Iterator<Item = ValueRef<'_>> {
    let common = [
        ValueRef::Text(event.account.as_bytes()),
        ValueRef::Text(event.event_id.as_str().as_bytes()),
        ValueRef::Text(event.id_source.as_str().as_bytes()),
        ValueRef::Text(event.event_type.as_bytes()),
        ValueRef::Integer(event.received_at_ms),
        ValueRef::Integer(event.ts_ms),
        ValueRef::Text(event.client.as_bytes()),
        ValueRef::Text(event.params_json.as_bytes()),
    ];
    let typed = (0..typed_columns).map(|i| match event.typed_value(i) {
        TypedValue::Text(s) => ValueRef::Text(s.as_bytes()),
        TypedValue::Int(i) => ValueRef::Integer(i),
        TypedValue::Null => ValueRef::Null,
    });
    common.into_iter().chain(typed)
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;

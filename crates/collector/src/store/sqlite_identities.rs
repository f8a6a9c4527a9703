//! Agent registrations in the collector's SQLite database (tables of schema version 5): in the
//! same file as the events, so one backup holds both, and shared with `tally collector
//! identities` in another process through SQLite's own locking. Every change is committed
//! before the registry answers it. Polls read only the withdrawals (revocations, forgotten
//! tasks) logged since the last poll; new registrations are read through when first used.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::FutureExt;
use rusqlite::{params, Connection, Transaction, TransactionBehavior};

use super::sqlite::{migrate, open_connection};
use super::StoreError;
use crate::config::SqliteConfig;
use crate::identity_backend::{IdentityBackend, StoredRuntime, Withdrawals};

/// Page cache of the registry's connection: it reads a few small rows at a time.
const IDENTITY_CACHE_KIB: u32 = 2 * 1024;

/// Registrations in a collector's SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteIdentities {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    /// The last `agent_withdrawals.seq` handed to the registry.
    seen: Arc<AtomicI64>,
}

impl SqliteIdentities {
    /// Opens (creating and migrating) the database `config` names; blocking.
    pub fn open(config: &SqliteConfig) -> Result<Self, String> {
        let path = config.path.clone();
        let message = |e: StoreError| format!("{}: {e}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| message(e.into()))?;
        }
        let mut conn = open_connection(&path, config, IDENTITY_CACHE_KIB).map_err(message)?;
        migrate(&mut conn).map_err(message)?;
        // Checkpoints stay with the ingest writer: a registration never waits for one.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0")
            .map_err(|e| message(e.into()))?;
        Ok(SqliteIdentities {
            conn: Arc::new(Mutex::new(conn)),
            path,
            seen: Arc::new(AtomicI64::new(0)),
        })
    }

    /// Everything kept, read in one transaction with the latest withdrawal, so the first poll
    /// hands over only what is withdrawn after this read; blocking.
    pub fn snapshot(&self) -> Result<Vec<StoredRuntime>, String> {
        let seen = Arc::clone(&self.seen);
        self.blocking(move |conn| {
            let tx = conn.transaction()?;
            let runtimes = read_runtimes(&tx, None)?;
            let last: i64 = tx.query_row(
                "SELECT COALESCE(MAX(seq), 0) FROM agent_withdrawals",
                [],
                |r| r.get(0),
            )?;
            seen.store(last, Ordering::SeqCst);
            Ok(runtimes)
        })
    }

    /// Keeps `runtimes` (their tasks and revocations too) in one transaction; what is kept
    /// already stays as it is; blocking.
    pub fn import(&self, runtimes: Vec<StoredRuntime>) -> Result<(), String> {
        self.blocking(move |conn| {
            write(conn, |tx| {
                runtimes.iter().try_for_each(|r| keep_runtime(tx, r))
            })
        })
    }

    fn blocking<T>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, String> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| format!("{}: connection lock poisoned", self.path.display()))?;
        work(&mut conn).map_err(|e| format!("{}: {e}", self.path.display()))
    }

    /// Runs `work` on a blocking thread when there is a Tokio runtime (a commit waits for the
    /// disk), else here.
    fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, String>> {
        let this = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => async move {
                let describe = this.describe();
                runtime
                    .spawn_blocking(move || this.blocking(work))
                    .await
                    .unwrap_or_else(|e| Err(format!("{describe}: {e}")))
            }
            .boxed(),
            Err(_) => futures::future::ready(this.blocking(work)).boxed(),
        }
    }
}

/// Runs `change` in a write transaction (taking the write lock at once, so it waits its turn
/// behind another process's change instead of failing half way).
fn write(
    conn: &mut Connection,
    change: impl FnOnce(&Transaction<'_>) -> Result<(), rusqlite::Error>,
) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    change(&tx)?;
    tx.commit()
}

fn keep_runtime(tx: &Transaction<'_>, r: &StoredRuntime) -> Result<(), rusqlite::Error> {
    tx.execute(
        "INSERT INTO agent_runtimes
            (agent_runtime_id, public_key, account, harness, registered_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        params![
            r.agent_runtime_id,
            r.public_key,
            r.account,
            r.harness,
            crate::time::now_ms()
        ],
    )?;
    for task in &r.tasks {
        set_task(tx, &r.agent_runtime_id, task, true)?;
    }
    if r.revoked {
        revoke(tx, &r.agent_runtime_id)?;
    }
    Ok(())
}

/// Marks a runtime revoked, logging the withdrawal the first time.
fn revoke(tx: &Transaction<'_>, id: &str) -> Result<(), rusqlite::Error> {
    let now = crate::time::now_ms();
    let changed = tx.execute(
        "UPDATE agent_runtimes SET revoked_at_ms = ?2
         WHERE agent_runtime_id = ?1 AND revoked_at_ms IS NULL",
        params![id, now],
    )?;
    if changed > 0 {
        log_withdrawal(tx, id, None, now)?;
    }
    Ok(())
}

/// Keeps a task, or forgets it (logged, the first time). A forgotten task is never kept again.
fn set_task(tx: &Transaction<'_>, id: &str, task: &str, kept: bool) -> Result<(), rusqlite::Error> {
    let now = crate::time::now_ms();
    let sql = if kept {
        "INSERT INTO agent_tasks (agent_runtime_id, task_id, kept, changed_at_ms)
         VALUES (?1, ?2, 1, ?3) ON CONFLICT DO NOTHING"
    } else {
        "INSERT INTO agent_tasks (agent_runtime_id, task_id, kept, changed_at_ms)
         VALUES (?1, ?2, 0, ?3)
         ON CONFLICT DO UPDATE SET kept = 0, changed_at_ms = ?3 WHERE kept = 1"
    };
    let changed = tx.execute(sql, params![id, task, now])?;
    if !kept && changed > 0 {
        log_withdrawal(tx, id, Some(task), now)?;
    }
    Ok(())
}

fn log_withdrawal(
    tx: &Transaction<'_>,
    id: &str,
    task: Option<&str>,
    at_ms: i64,
) -> Result<(), rusqlite::Error> {
    tx.execute(
        "INSERT INTO agent_withdrawals (agent_runtime_id, task_id, at_ms) VALUES (?1, ?2, ?3)",
        params![id, task, at_ms],
    )?;
    Ok(())
}

/// Runtimes (one, or all by id) with their kept tasks.
fn read_runtimes(
    conn: &Connection,
    id: Option<&str>,
) -> Result<Vec<StoredRuntime>, rusqlite::Error> {
    let (select_tasks, select_runtimes) = read_sql(id.is_some());
    let mut tasks: HashMap<String, Vec<String>> = HashMap::new();
    let mut select_tasks = conn.prepare_cached(&select_tasks)?;
    let rows = select_tasks.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
    for row in rows {
        let (runtime, task) = row?;
        tasks.entry(runtime).or_default().push(task);
    }
    let mut select_runtimes = conn.prepare_cached(&select_runtimes)?;
    let rows = select_runtimes.query_map([id], |r| {
        let agent_runtime_id: String = r.get(0)?;
        Ok(StoredRuntime {
            tasks: tasks.remove(&agent_runtime_id).unwrap_or_default(),
            public_key: r.get(1)?,
            account: r.get(2)?,
            harness: r.get(3)?,
            revoked: r.get(4)?,
            agent_runtime_id,
        })
    })?;
    rows.collect()
}

/// The SELECTs of kept tasks and of runtimes, of one runtime (`?1`, found through the primary
/// keys: a look-up must not read every task ever registered) or of all (`?1` is NULL).
fn read_sql(one: bool) -> (String, String) {
    let filter = if one {
        "agent_runtime_id = ?1"
    } else {
        "?1 IS NULL"
    };
    (
        format!(
            "SELECT agent_runtime_id, task_id FROM agent_tasks WHERE {filter} AND kept = 1
             ORDER BY agent_runtime_id, task_id"
        ),
        format!(
            "SELECT agent_runtime_id, public_key, account, harness, revoked_at_ms IS NOT NULL
             FROM agent_runtimes WHERE {filter} ORDER BY agent_runtime_id"
        ),
    )
}

impl IdentityBackend for SqliteIdentities {
    fn everything(&self) -> BoxFuture<'_, Result<Vec<StoredRuntime>, String>> {
        self.run(|conn| read_runtimes(conn, None))
    }

    fn runtime<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<StoredRuntime>, String>> {
        let id = id.to_owned();
        self.run(move |conn| Ok(read_runtimes(conn, Some(&id))?.into_iter().next()))
    }

    fn changes(&self) -> BoxFuture<'_, Result<Option<Withdrawals>, String>> {
        let seen = Arc::clone(&self.seen);
        self.run(move |conn| {
            let after = seen.load(Ordering::SeqCst);
            let mut select = conn.prepare_cached(
                "SELECT seq, agent_runtime_id, task_id FROM agent_withdrawals
                 WHERE seq > ?1 ORDER BY seq",
            )?;
            let rows = select.query_map([after], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?))
            })?;
            let (mut revoked, mut forgotten, mut last) = (Vec::new(), Vec::new(), after);
            for row in rows {
                let (seq, runtime, task): (i64, String, Option<String>) = row?;
                last = last.max(seq);
                match task {
                    Some(task) => forgotten.push((runtime, task)),
                    None => revoked.push(runtime),
                }
            }
            if last == after {
                return Ok(None);
            }
            seen.store(last, Ordering::SeqCst);
            Ok(Some(Withdrawals { revoked, forgotten }))
        })
    }

    fn add_runtime<'a>(&'a self, runtime: &'a StoredRuntime) -> BoxFuture<'a, Result<(), String>> {
        let runtime = runtime.clone();
        self.run(move |conn| write(conn, |tx| keep_runtime(tx, &runtime)))
    }

    fn revoke<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), String>> {
        let id = id.to_owned();
        self.run(move |conn| write(conn, |tx| revoke(tx, &id)))
    }

    fn set_task<'a>(
        &'a self,
        id: &'a str,
        task: &'a str,
        kept: bool,
    ) -> BoxFuture<'a, Result<(), String>> {
        let (id, task) = (id.to_owned(), task.to_owned());
        self.run(move |conn| write(conn, |tx| set_task(tx, &id, &task, kept)))
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

#[cfg(test)]
#[path = "sqlite_identities_tests.rs"]
mod tests;

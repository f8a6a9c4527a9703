//! Agent registrations in the ClickHouse database the collectors of a fleet share: a runtime or
//! task registered through one collector is read through by the others when first used, and
//! revocations and forgotten tasks are polled. Rows are only ever added: a runtime once, a
//! revocation once, a task's state with a version (its latest counts), so collectors writing at
//! the same time never lose each other's rows. Works on ClickHouse 18.16 (`argMax`, no `FINAL`
//! needed).

use std::collections::{HashMap, HashSet};

use futures::future::BoxFuture;
use futures::FutureExt;
use serde_json::{json, Map, Value};

use super::clickhouse::{sql_string, ClickHouseStore};
use super::StoreError;
use crate::config::ClickHouseConfig;
use crate::identity_backend::{IdentityBackend, StoredRuntime, Withdrawals};

/// The tables (made with the event tables, `IF NOT EXISTS`).
pub(crate) fn schema(db: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.agent_runtimes (agent_runtime_id String, \
             public_key String, account String, harness String, registered_at_ms Int64) \
             ENGINE = ReplacingMergeTree() ORDER BY agent_runtime_id"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.agent_revocations (agent_runtime_id String, \
             revoked_at_ms Int64) ENGINE = ReplacingMergeTree() ORDER BY agent_runtime_id"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.agent_tasks (agent_runtime_id String, task_id String, \
             kept UInt8, version UInt64) \
             ENGINE = ReplacingMergeTree(version) ORDER BY (agent_runtime_id, task_id)"
        ),
    ]
}

/// Registrations in the shared ClickHouse database.
#[derive(Debug)]
pub struct ClickHouseIdentities {
    db: ClickHouseStore,
}

impl ClickHouseIdentities {
    /// Registrations in the database `config` names.
    pub fn new(config: &ClickHouseConfig) -> Result<Self, StoreError> {
        Ok(ClickHouseIdentities {
            db: ClickHouseStore::client(config)?,
        })
    }

    fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.db.database())
    }

    /// Runtimes (with `filter`, a SQL condition on `agent_runtime_id`), their revocations and
    /// kept tasks.
    async fn read(&self, filter: &str) -> Result<Vec<StoredRuntime>, StoreError> {
        let runtimes = self
            .db
            .rows(&format!(
                "SELECT agent_runtime_id, any(public_key) AS public_key, any(account) AS account, \
                 any(harness) AS harness FROM {} WHERE {filter} GROUP BY agent_runtime_id \
                 ORDER BY agent_runtime_id",
                self.table("agent_runtimes")
            ))
            .await?;
        let revoked: HashSet<String> = self.revoked(filter).await?.into_iter().collect();
        let mut tasks: HashMap<String, Vec<String>> = HashMap::new();
        for (runtime, task) in self.tasks(filter).await? {
            tasks.entry(runtime).or_default().push(task);
        }
        Ok(runtimes
            .iter()
            .map(|row| {
                let id = text(row, "agent_runtime_id");
                StoredRuntime {
                    public_key: text(row, "public_key"),
                    account: text(row, "account"),
                    harness: text(row, "harness"),
                    tasks: tasks.remove(&id).unwrap_or_default(),
                    revoked: revoked.contains(&id),
                    agent_runtime_id: id,
                }
            })
            .collect())
    }

    async fn revoked(&self, filter: &str) -> Result<Vec<String>, StoreError> {
        let rows = self
            .db
            .rows(&format!(
                "SELECT DISTINCT agent_runtime_id FROM {} WHERE {filter}",
                self.table("agent_revocations")
            ))
            .await?;
        Ok(rows.iter().map(|r| text(r, "agent_runtime_id")).collect())
    }

    /// `(runtime, task)` pairs whose latest state is kept.
    async fn tasks(&self, filter: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self
            .db
            .rows(&format!(
                "SELECT agent_runtime_id, task_id FROM {} WHERE {filter} \
                 GROUP BY agent_runtime_id, task_id HAVING argMax(kept, version) = 1 \
                 ORDER BY agent_runtime_id, task_id",
                self.table("agent_tasks")
            ))
            .await?;
        Ok(pairs(&rows))
    }

    /// Every forgotten `(runtime, task)` pair. A task is never kept again once forgotten, so
    /// its forgetting row is enough (no grouping over every task, each second).
    async fn forgotten(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self
            .db
            .rows(&format!(
                "SELECT DISTINCT agent_runtime_id, task_id FROM {} WHERE kept = 0",
                self.table("agent_tasks")
            ))
            .await?;
        Ok(pairs(&rows))
    }

    fn message(&self, e: StoreError) -> String {
        format!("ClickHouse database {}: {e}", self.db.database())
    }
}

fn pairs(rows: &[Map<String, Value>]) -> Vec<(String, String)> {
    rows.iter()
        .map(|r| (text(r, "agent_runtime_id"), text(r, "task_id")))
        .collect()
}

fn text(row: &Map<String, Value>, key: &str) -> String {
    row.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A version that orders a task's states: nanoseconds since the epoch.
fn version() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl IdentityBackend for ClickHouseIdentities {
    fn everything(&self) -> BoxFuture<'_, Result<Vec<StoredRuntime>, String>> {
        async move { self.read("1").await.map_err(|e| self.message(e)) }.boxed()
    }

    fn runtime<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<StoredRuntime>, String>> {
        async move {
            let filter = format!("agent_runtime_id = {}", sql_string(id));
            let found = self.read(&filter).await.map_err(|e| self.message(e))?;
            Ok(found.into_iter().next())
        }
        .boxed()
    }

    fn changes(&self) -> BoxFuture<'_, Result<Option<Withdrawals>, String>> {
        async move {
            let revoked = self.revoked("1").await.map_err(|e| self.message(e))?;
            let forgotten = self.forgotten().await.map_err(|e| self.message(e))?;
            Ok(Some(Withdrawals { revoked, forgotten }))
        }
        .boxed()
    }

    fn add_runtime<'a>(&'a self, runtime: &'a StoredRuntime) -> BoxFuture<'a, Result<(), String>> {
        async move {
            let row = json!({
                "agent_runtime_id": runtime.agent_runtime_id,
                "public_key": runtime.public_key,
                "account": runtime.account,
                "harness": runtime.harness,
                "registered_at_ms": crate::time::now_ms(),
            });
            self.db
                .insert_rows("agent_runtimes", &[row])
                .await
                .map_err(|e| self.message(e))
        }
        .boxed()
    }

    fn revoke<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), String>> {
        async move {
            let row = json!({"agent_runtime_id": id, "revoked_at_ms": crate::time::now_ms()});
            self.db
                .insert_rows("agent_revocations", &[row])
                .await
                .map_err(|e| self.message(e))
        }
        .boxed()
    }

    fn set_task<'a>(
        &'a self,
        id: &'a str,
        task: &'a str,
        kept: bool,
    ) -> BoxFuture<'a, Result<(), String>> {
        async move {
            let row = json!({
                "agent_runtime_id": id, "task_id": task, "kept": u8::from(kept), "version": version(),
            });
            self.db
                .insert_rows("agent_tasks", &[row])
                .await
                .map_err(|e| self.message(e))
        }
        .boxed()
    }

    fn describe(&self) -> String {
        format!("ClickHouse database {}", self.db.database())
    }
}

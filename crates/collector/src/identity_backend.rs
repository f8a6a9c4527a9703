//! Where agent registrations are kept. One collector keeps them in its SQLite database
//! ([`crate::store::sqlite_identities`]); collectors sharing a ClickHouse keep them in its tables
//! ([`crate::store::clickhouse_identities`]), so a runtime or task registered through one collector
//! is known to all of them, and a revocation reaches all of them within a poll.
//!
//! The registry ([`crate::agent_identity::IdentityRegistry`]) verifies from memory; a backend is
//! read through when an assertion names a runtime or task memory lacks, and polled for
//! revocations and forgotten tasks.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::config::{CollectorConfig, StoreKind};
use crate::identity_legacy_file::import_legacy_file;
use crate::store::clickhouse_identities::ClickHouseIdentities;
use crate::store::sqlite_identities::SqliteIdentities;

/// One runtime as kept (public material only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRuntime {
    /// The runtime id.
    pub agent_runtime_id: String,
    /// `ssh-ed25519 <base64>`.
    pub public_key: String,
    /// The account whose token registered it.
    pub account: String,
    /// `abom.agent_harness_id`.
    pub harness: String,
    /// Its registered tasks.
    pub tasks: Vec<String>,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// What was withdrawn in a backend: runtimes revoked and tasks forgotten since the last poll
/// (SQLite) or so far (ClickHouse). Withdrawals are final, so applying one again changes nothing,
/// and nothing a poll hands over can undo a change this process made meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawals {
    /// Revoked runtime ids.
    pub revoked: Vec<String>,
    /// Forgotten `(runtime, task)` pairs.
    pub forgotten: Vec<(String, String)>,
}

/// A place agent registrations are kept. Errors are messages naming the place.
pub trait IdentityBackend: Send + Sync {
    /// Every runtime with its tasks.
    fn everything(&self) -> BoxFuture<'_, Result<Vec<StoredRuntime>, String>>;

    /// One runtime with its tasks.
    fn runtime<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<StoredRuntime>, String>>;

    /// What was withdrawn since the last call (`None`: nothing).
    fn changes(&self) -> BoxFuture<'_, Result<Option<Withdrawals>, String>>;

    /// Keeps a new runtime.
    fn add_runtime<'a>(&'a self, runtime: &'a StoredRuntime) -> BoxFuture<'a, Result<(), String>>;

    /// Keeps a runtime's revocation.
    fn revoke<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), String>>;

    /// Keeps a task of a runtime (`kept`), or that it was forgotten.
    fn set_task<'a>(
        &'a self,
        id: &'a str,
        task: &'a str,
        kept: bool,
    ) -> BoxFuture<'a, Result<(), String>>;

    /// Where registrations are kept, for messages.
    fn describe(&self) -> String;
}

/// The backend `config` names: the SQLite database (after importing the JSON file earlier
/// versions kept beside it, if there is one), else the ClickHouse tables. For SQLite, what it
/// holds comes with it (read now, so a database that cannot be read stops start-up); ClickHouse
/// runtimes are read through as they are used.
pub fn open_backend(
    config: &CollectorConfig,
) -> Result<(Arc<dyn IdentityBackend>, Vec<StoredRuntime>), String> {
    match config.store {
        StoreKind::Sqlite => {
            let db = SqliteIdentities::open(&config.sqlite)?;
            import_legacy_file(&config.legacy_identity_file(), &db)?;
            let stored = db.snapshot()?;
            Ok((Arc::new(db), stored))
        }
        StoreKind::Clickhouse => {
            let shared =
                ClickHouseIdentities::new(&config.clickhouse).map_err(|e| e.to_string())?;
            Ok((Arc::new(shared), Vec::new()))
        }
    }
}

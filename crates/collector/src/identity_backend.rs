//! Where agent registrations are kept. One collector keeps them in a JSON file
//! ([`crate::identity_file`]); collectors sharing a ClickHouse keep them in its tables
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

/// What changed in a backend since it was last polled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changes {
    /// Everything, as it now is (a file that changed).
    Everything(Vec<StoredRuntime>),
    /// Every runtime revoked and every task forgotten so far (new registrations are read through
    /// when first used).
    Withdrawn {
        /// Revoked runtime ids.
        revoked: Vec<String>,
        /// Forgotten `(runtime, task)` pairs.
        forgotten: Vec<(String, String)>,
    },
}

/// A place agent registrations are kept. Errors are messages naming the place.
pub trait IdentityBackend: Send + Sync {
    /// Every runtime with its tasks.
    fn everything(&self) -> BoxFuture<'_, Result<Vec<StoredRuntime>, String>>;

    /// One runtime with its tasks.
    fn runtime<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<StoredRuntime>, String>>;

    /// What changed since the last call (`None`: nothing).
    fn changes(&self) -> BoxFuture<'_, Result<Option<Changes>, String>>;

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

/// The backend `config` names: `registry_path` when set, else a file beside the SQLite database,
/// else the ClickHouse tables. The registrations kept there so far (for a file, read now, so a
/// corrupt file stops start-up) come with it.
pub fn open_backend(
    config: &CollectorConfig,
) -> Result<(Arc<dyn IdentityBackend>, Vec<StoredRuntime>), String> {
    if let Some(path) = config.identity_registry_path() {
        let (file, stored) = crate::identity_file::FileIdentities::open(path)?;
        return Ok((Arc::new(file), stored));
    }
    match config.store {
        StoreKind::Clickhouse => {
            let shared =
                crate::store::clickhouse_identities::ClickHouseIdentities::new(&config.clickhouse)
                    .map_err(|e| e.to_string())?;
            Ok((Arc::new(shared), Vec::new()))
        }
        // `identity_registry_path` always names a file for SQLite.
        StoreKind::Sqlite => Err("no place to keep agent identities".into()),
    }
}

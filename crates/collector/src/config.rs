//! The `[collector]` table of `config.toml`: where to listen, who may send, where events are kept.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::decode::DecodeLimits;

/// Widest accepted `agent_identity.window_seconds`: a day of clock skew is already generous, and
/// past what `SystemTime` holds the arithmetic would overflow.
const MAX_WINDOW_SECONDS: u64 = 86_400;
/// Largest `max_body_bytes`: a body of up to this size is reserved from the sender's
/// `Content-Length`, per request in flight.
const MAX_BODY_BYTES: usize = 1 << 30;
/// Largest `max_decompressed_bytes`.
const MAX_DECOMPRESSED_BYTES: usize = 4 << 30;
/// Largest `queue_capacity` and `max_inflight_requests` (a semaphore refuses, by panicking, to
/// hold more than `usize::MAX >> 3` permits).
const MAX_QUEUED: usize = 1_000_000;
/// Longest `sqlite.busy_timeout_ms` (SQLite takes an `int` of ms, and rusqlite panics past it).
const MAX_BUSY_TIMEOUT_MS: u64 = 3_600_000;

/// Configuration of one collector.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CollectorConfig {
    /// Address `tally collector` binds (the caller may pass its own listener instead).
    pub listen: SocketAddr,
    /// Prefixes under which the Codex endpoints are also served, e.g. `/backend-api` (Codex's
    /// `chatgpt_base_url` usually carries one). The bare path is always served.
    pub path_prefixes: Vec<String>,
    /// Largest request body accepted, compressed (413 above).
    pub max_body_bytes: usize,
    /// Largest body after gzip decompression (413 above; the gzip-bomb cap).
    pub max_decompressed_bytes: usize,
    /// Most events in one batch (413 above).
    pub max_events_per_batch: usize,
    /// Longest string value in an event (the event is rejected above).
    pub max_string_bytes: usize,
    /// Whether requests without credentials may ingest: `false`, `true` (= from loopback peers
    /// only), `"loopback"` or `"any"`.
    pub allow_unauthenticated: Unauthenticated,
    /// Bearer tokens that may send events.
    pub tokens: Vec<TokenConfig>,
    /// Whether the dashboard, `/api/report` and `/metrics` are readable without a token with the
    /// `read` scope.
    pub dashboard_public: bool,
    /// Which store engine keeps the events.
    pub store: StoreKind,
    /// Settings of the SQLite engine.
    pub sqlite: SqliteConfig,
    /// Settings of the ClickHouse engine.
    pub clickhouse: ClickHouseConfig,
    /// Batches waiting for the store at most; a full queue answers 429.
    pub queue_capacity: usize,
    /// Ingest requests read and decoded at the same time at most (bounds memory); 429 beyond.
    pub max_inflight_requests: usize,
    /// How long a request waits for its batch to be stored before answering 503.
    pub store_timeout_ms: u64,
    /// `Retry-After` seconds sent with 429 and 503.
    pub retry_after_seconds: u32,
    /// Days of events kept, by their own time (0: all, the default). Older ones are deleted at
    /// start and every hour after; their ids stay known, so a re-sent one is still a duplicate.
    /// SQLite only: on ClickHouse the server's own TTL does this (see the README).
    pub retention_days: u32,
    /// Agent-identity registration and `AgentAssertion` verification.
    pub agent_identity: AgentIdentityServerConfig,
}

/// `[collector.agent_identity]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AgentIdentityServerConfig {
    /// Whether the registration endpoints exist and `AgentAssertion` is verified (else refused).
    pub enabled: bool,
    /// Prefix of `/v1/agent/register` (Codex's `CODEX_AGENT_IDENTITY_AUTHAPI_BASE_URL` path).
    pub prefix: String,
    /// Accepted clock skew of an assertion's timestamp, either way, in seconds.
    pub window_seconds: u64,
    /// Requests (and task registrations) one runtime may make per minute, as a token bucket of
    /// that size refilled evenly; beyond it the answer is 429 with `Retry-After`.
    pub max_requests_per_minute: u32,
    /// Unrevoked runtimes one account may have; a registration beyond is refused (403
    /// `agent_runtime_limit`). Each Tally or Codex home registers one.
    pub max_runtimes_per_account: usize,
    /// Tasks one runtime may register; beyond, 403 `agent_task_limit` (Tally registers one per
    /// thread; a runtime that keeps registering is misbehaving).
    pub max_tasks_per_runtime: usize,
    /// Whether task registration answers `{"encrypted_task_id"}` (the task id sealed to the
    /// runtime's X25519 key, standard base64) instead of `{"task_id"}`. Codex opens both.
    pub encrypt_task_ids: bool,
    /// No longer used (refused with a message saying so): registrations are kept in the
    /// collector's SQLite database, or for ClickHouse in its tables, shared by every collector on
    /// the same database. Earlier versions kept them in this JSON file.
    pub registry_path: Option<PathBuf>,
}

impl Default for AgentIdentityServerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            prefix: "/api/accounts".into(),
            window_seconds: 120,
            max_requests_per_minute: 600,
            max_runtimes_per_account: 10_000,
            max_tasks_per_runtime: 100_000,
            encrypt_task_ids: false,
            registry_path: None,
        }
    }
}

impl Default for CollectorConfig {
    /// Suitable for `tally serve`: loopback, unauthenticated from loopback peers only, SQLite.
    fn default() -> Self {
        CollectorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            path_prefixes: vec!["/backend-api".into()],
            max_body_bytes: 5 * 1024 * 1024,
            max_decompressed_bytes: 32 * 1024 * 1024,
            max_events_per_batch: 10_000,
            max_string_bytes: 4096,
            allow_unauthenticated: Unauthenticated::Loopback,
            tokens: Vec::new(),
            dashboard_public: true,
            store: StoreKind::Sqlite,
            sqlite: SqliteConfig::default(),
            clickhouse: ClickHouseConfig::default(),
            queue_capacity: 64,
            max_inflight_requests: 64,
            store_timeout_ms: 30_000,
            retry_after_seconds: 1,
            retention_days: 0,
            agent_identity: AgentIdentityServerConfig::default(),
        }
    }
}

impl CollectorConfig {
    /// The embedded collector of `tally serve`: defaults, with the SQLite file at `db_path`.
    pub fn embedded(db_path: impl Into<PathBuf>) -> Self {
        CollectorConfig {
            sqlite: SqliteConfig {
                path: db_path.into(),
                ..SqliteConfig::default()
            },
            ..CollectorConfig::default()
        }
    }

    /// The JSON file earlier versions kept a SQLite collector's agent registrations in; imported
    /// into the database at start (see [`crate::identity_legacy_file`]).
    pub fn legacy_identity_file(&self) -> PathBuf {
        self.sqlite.path.with_extension("identities.json")
    }

    /// Checks values serde cannot; errors name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: String, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.into(),
            })
        };
        for (i, prefix) in self.path_prefixes.iter().enumerate() {
            if !prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains("//") {
                return bad(
                    format!("collector.path_prefixes[{i}]"),
                    "must start with '/' and not end with '/' (e.g. \"/backend-api\")",
                );
            }
        }
        let identity_prefix = &self.agent_identity.prefix;
        if !identity_prefix.is_empty()
            && (!identity_prefix.starts_with('/')
                || identity_prefix.ends_with('/')
                || identity_prefix.contains("//"))
        {
            return bad(
                "collector.agent_identity.prefix".into(),
                "must be empty or start with '/' and not end with '/' (e.g. \"/api/accounts\")",
            );
        }
        if self.retention_days > 0 && self.store == StoreKind::Clickhouse {
            return bad(
                "collector.retention_days".into(),
                "applies to SQLite only: on ClickHouse give the tables a TTL (see the collector \
                 README), then remove this key",
            );
        }
        if let Some(path) = &self.agent_identity.registry_path {
            let instead = match self.store {
                StoreKind::Sqlite => format!(
                    "in the collector's SQLite database, and a JSON registry at {} is imported \
                     at start: move {} there, then remove this key",
                    self.legacy_identity_file().display(),
                    path.display()
                ),
                StoreKind::Clickhouse => format!(
                    "in the shared ClickHouse tables (runtimes kept only in {} must register \
                     again): remove this key",
                    path.display()
                ),
            };
            return bad(
                "collector.agent_identity.registry_path".into(),
                &format!("is no longer used: agent registrations are kept {instead}"),
            );
        }
        if !(1..=MAX_WINDOW_SECONDS).contains(&self.agent_identity.window_seconds) {
            return bad(
                "collector.agent_identity.window_seconds".into(),
                &format!("must be from 1 to {MAX_WINDOW_SECONDS} (a day)"),
            );
        }
        for (key, value) in [
            (
                "max_runtimes_per_account",
                self.agent_identity.max_runtimes_per_account,
            ),
            (
                "max_tasks_per_runtime",
                self.agent_identity.max_tasks_per_runtime,
            ),
        ] {
            if value == 0 {
                return bad(
                    format!("collector.agent_identity.{key}"),
                    "must be greater than 0",
                );
            }
        }
        if self.agent_identity.max_requests_per_minute == 0 {
            return bad(
                "collector.agent_identity.max_requests_per_minute".into(),
                "must be greater than 0",
            );
        }
        if !(1..=MAX_BODY_BYTES).contains(&self.max_body_bytes) {
            return bad(
                "collector.max_body_bytes".into(),
                &format!("must be from 1 to {MAX_BODY_BYTES} (1 GiB)"),
            );
        }
        let page = self.sqlite.page_size;
        if !(512..=65_536).contains(&page) || !page.is_power_of_two() {
            return bad(
                "collector.sqlite.page_size".into(),
                "must be a power of two from 512 to 65536",
            );
        }
        if self.max_decompressed_bytes < self.max_body_bytes {
            return bad(
                "collector.max_decompressed_bytes".into(),
                "must be at least max_body_bytes",
            );
        }
        if self.max_decompressed_bytes > MAX_DECOMPRESSED_BYTES {
            return bad(
                "collector.max_decompressed_bytes".into(),
                &format!("must be at most {MAX_DECOMPRESSED_BYTES} (4 GiB)"),
            );
        }
        if self.max_events_per_batch == 0 {
            return bad(
                "collector.max_events_per_batch".into(),
                "must be greater than 0",
            );
        }
        if self.max_string_bytes < 64 {
            return bad("collector.max_string_bytes".into(), "must be at least 64");
        }
        if !(1..=MAX_QUEUED).contains(&self.queue_capacity) {
            return bad(
                "collector.queue_capacity".into(),
                &format!("must be from 1 to {MAX_QUEUED}"),
            );
        }
        if !(1..=MAX_QUEUED).contains(&self.max_inflight_requests) {
            return bad(
                "collector.max_inflight_requests".into(),
                &format!("must be from 1 to {MAX_QUEUED}"),
            );
        }
        if self.store_timeout_ms == 0 {
            return bad(
                "collector.store_timeout_ms".into(),
                "must be greater than 0",
            );
        }
        for (i, token) in self.tokens.iter().enumerate() {
            match (&token.token, &token.token_sha256) {
                (Some(_), Some(_)) | (None, None) => {
                    return bad(
                        format!("collector.tokens[{i}]"),
                        "set exactly one of `token` and `token_sha256`",
                    )
                }
                (Some(t), None) if t.is_empty() => {
                    return bad(format!("collector.tokens[{i}].token"), "must not be empty")
                }
                (None, Some(h)) if parse_sha256_hex(h).is_none() => {
                    return bad(
                        format!("collector.tokens[{i}].token_sha256"),
                        "must be 64 hexadecimal characters (sha256 of the token)",
                    )
                }
                _ => {}
            }
            if token.scopes.is_empty() {
                return bad(format!("collector.tokens[{i}].scopes"), "must not be empty");
            }
        }
        if self.store == StoreKind::Sqlite && self.sqlite.path.as_os_str().is_empty() {
            return bad("collector.sqlite.path".into(), "must not be empty");
        }
        if self.sqlite.busy_timeout_ms > MAX_BUSY_TIMEOUT_MS {
            return bad(
                "collector.sqlite.busy_timeout_ms".into(),
                &format!("must be at most {MAX_BUSY_TIMEOUT_MS} (an hour)"),
            );
        }
        if self.store == StoreKind::Clickhouse {
            let ch = &self.clickhouse;
            if !(ch.url.starts_with("http://") || ch.url.starts_with("https://")) {
                return bad(
                    "collector.clickhouse.url".into(),
                    "must be an http:// or https:// URL of the ClickHouse HTTP interface",
                );
            }
            let valid_name = !ch.database.is_empty()
                && ch.database.len() <= 64
                && ch
                    .database
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_');
            if !valid_name {
                return bad(
                    "collector.clickhouse.database".into(),
                    "must be 1-64 characters of A-Z, a-z, 0-9 and _",
                );
            }
            if ch.timeout_ms == 0 {
                return bad(
                    "collector.clickhouse.timeout_ms".into(),
                    "must be greater than 0",
                );
            }
        }
        Ok(())
    }

    /// The decoder caps of this configuration.
    pub fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_decompressed_bytes: self.max_decompressed_bytes,
            max_events_per_batch: self.max_events_per_batch,
            max_string_bytes: self.max_string_bytes,
        }
    }

    /// [`CollectorConfig::store_timeout_ms`] as a duration.
    pub fn store_timeout(&self) -> Duration {
        Duration::from_millis(self.store_timeout_ms)
    }
}

/// A configuration value that is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The key and what is wrong with its value.
    #[error("{key}: {message}")]
    Invalid {
        /// Full key, e.g. `collector.tokens[0].token_sha256`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// Who may ingest without a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unauthenticated {
    /// Nobody: every request needs a token.
    Deny,
    /// Peers on a loopback address (127.0.0.0/8, ::1).
    Loopback,
    /// Anyone who can reach the port.
    Any,
}

impl<'de> Deserialize<'de> for Unauthenticated {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Bool(false) => Ok(Unauthenticated::Deny),
            Raw::Bool(true) => Ok(Unauthenticated::Loopback),
            Raw::Text(s) => match s.as_str() {
                "deny" | "never" => Ok(Unauthenticated::Deny),
                "loopback" => Ok(Unauthenticated::Loopback),
                "any" => Ok(Unauthenticated::Any),
                other => Err(serde::de::Error::custom(format!(
                    "allow_unauthenticated: expected true, false, \"loopback\" or \"any\", got \"{other}\""
                ))),
            },
        }
    }
}

/// One bearer token allowed to talk to the collector.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The token in clear (convenient for local use; prefer `token_sha256`).
    #[serde(default)]
    pub token: Option<String>,
    /// Lowercase hex SHA-256 of the token (what the collector keeps in memory in every case).
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// Account the events of this token belong to; when absent, the `chatgpt-account-id` header.
    #[serde(default)]
    pub account: Option<String>,
    /// Human label for logs and metrics (never the token).
    #[serde(default)]
    pub label: String,
    /// What the token may do: `ingest`, `read`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<Scope>,
}

fn default_scopes() -> Vec<Scope> {
    vec![Scope::Ingest]
}

/// A permission a token carries.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// POST events.
    Ingest,
    /// Read the dashboard, report and metrics.
    Read,
}

/// The store engine.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// Embedded SQLite file.
    #[default]
    Sqlite,
    /// A ClickHouse server over HTTP (shared by many collectors).
    Clickhouse,
}

/// `[collector.clickhouse]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// HTTP interface, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// Database (created if missing).
    pub database: String,
    /// User (`default` when empty).
    pub user: String,
    /// Password.
    pub password: String,
    /// Deadline of one HTTP call to ClickHouse.
    pub timeout_ms: u64,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: "http://127.0.0.1:8123".into(),
            database: "tally".into(),
            user: String::new(),
            password: String::new(),
            timeout_ms: 30_000,
        }
    }
}

/// `[collector.sqlite]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteConfig {
    /// Database file (created if missing). `tally` reads it from config.toml relative to its
    /// home, and uses `collector/tally.db` there when the table names none.
    pub path: PathBuf,
    /// `full` (fsync on every commit: a 200 survives power loss) or `normal` (survives a crash of
    /// the collector, may lose the last commits on power loss).
    pub synchronous: Synchronous,
    /// How long a write waits for a lock held by another process.
    pub busy_timeout_ms: u64,
    /// Page size of a database file this collector creates (an existing file keeps its own).
    /// Large pages cost fewer page splits and WAL frames per event in big transactions.
    pub page_size: u32,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            path: PathBuf::from("analytics.sqlite3"),
            synchronous: Synchronous::Full,
            busy_timeout_ms: 5_000,
            page_size: 16_384,
        }
    }
}

/// SQLite `PRAGMA synchronous` level.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// fsync on every commit.
    Full,
    /// fsync at checkpoints only.
    Normal,
}

/// Parses 64 hex characters into 32 bytes.
pub(crate) fn parse_sha256_hex(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

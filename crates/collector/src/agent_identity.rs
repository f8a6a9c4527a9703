//! Agent identities on the collector: registration of runtimes (bearer of a known account) and of
//! their tasks (signed by the runtime's key), and verification of `AgentAssertion` credentials.
//!
//! Ed25519 is deterministic, so a real Codex sends byte-identical headers for two requests in the
//! same second: exact repeats inside the window are accepted and counted, not refused. A stolen
//! header is bounded by the short window, immediate revocation and a per-runtime rate limit (a
//! token bucket of `max_requests_per_minute`, spent only by requests that verified, so nobody
//! without the key can use up a runtime's budget).
//!
//! With `encrypt_task_ids`, task registration answers `encrypted_task_id`: the task id sealed
//! (libsodium `crypto_box_seal`) to the X25519 form of the runtime's Ed25519 key, in standard
//! base64 with padding, as Codex opens it.
//!
//! Assertions verify from memory. Registrations are kept by an [`IdentityBackend`] before they
//! are answered; a runtime or task memory lacks is read through from it (another collector of the
//! fleet may have registered it), and it is polled for revocations and forgotten tasks.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use crypto_box::aead::OsRng;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::config::AgentIdentityServerConfig;
use crate::identity_backend::{IdentityBackend, StoredRuntime, Withdrawals};

/// Why an assertion or a task registration was refused; each is a 401 with [`Rejection::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejection {
    /// The credential is not base64url.
    #[error("AgentAssertion is not base64url")]
    BadBase64,
    /// The decoded credential is not a JSON object.
    #[error("AgentAssertion is not JSON")]
    BadJson,
    /// A required field is absent or empty.
    #[error("AgentAssertion lacks a required field")]
    MissingField,
    /// The timestamp is not RFC 3339.
    #[error("AgentAssertion timestamp is not RFC 3339")]
    BadTimestamp,
    /// The timestamp is older than the window.
    #[error("AgentAssertion is expired")]
    Expired,
    /// The timestamp is later than the window allows.
    #[error("AgentAssertion is dated in the future")]
    FutureDated,
    /// The runtime was never registered here.
    #[error("unknown agent runtime")]
    UnknownRuntime,
    /// The task was never registered for this runtime.
    #[error("unknown agent task")]
    UnknownTask,
    /// The runtime was revoked.
    #[error("agent runtime revoked")]
    Revoked,
    /// The signature does not verify with the registered key.
    #[error("AgentAssertion signature does not verify")]
    BadSignature,
    /// The runtime sent more requests than its rate limit allows (429 with `Retry-After`).
    #[error("agent runtime over its rate limit")]
    RateLimited,
}

impl Rejection {
    const ALL: [Rejection; 11] = [
        Rejection::BadBase64,
        Rejection::BadJson,
        Rejection::MissingField,
        Rejection::BadTimestamp,
        Rejection::Expired,
        Rejection::FutureDated,
        Rejection::UnknownRuntime,
        Rejection::UnknownTask,
        Rejection::Revoked,
        Rejection::BadSignature,
        Rejection::RateLimited,
    ];

    /// A stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            Rejection::BadBase64 => "agent_assertion_bad_base64",
            Rejection::BadJson => "agent_assertion_bad_json",
            Rejection::MissingField => "agent_assertion_missing_field",
            Rejection::BadTimestamp => "agent_assertion_bad_timestamp",
            Rejection::Expired => "agent_assertion_expired",
            Rejection::FutureDated => "agent_assertion_future_dated",
            Rejection::UnknownRuntime => "agent_runtime_unknown",
            Rejection::UnknownTask => "agent_task_unknown",
            Rejection::Revoked => "agent_runtime_revoked",
            Rejection::BadSignature => "agent_assertion_bad_signature",
            Rejection::RateLimited => "agent_runtime_rate_limited",
        }
    }

    fn index(self) -> usize {
        Rejection::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// An assertion that verified: who the request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAgent {
    /// The runtime.
    pub agent_runtime_id: String,
    /// The task.
    pub task_id: String,
    /// The account that registered the runtime.
    pub account: String,
}

/// A registered runtime, as `tally collector identities list` shows it (no key material).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuntimeSummary {
    /// The runtime id.
    pub agent_runtime_id: String,
    /// The account that registered it.
    pub account: String,
    /// `abom.agent_harness_id`.
    pub harness: String,
    /// Registered tasks.
    pub tasks: usize,
    /// Whether it was revoked.
    pub revoked: bool,
}

impl From<&StoredRuntime> for RuntimeSummary {
    fn from(r: &StoredRuntime) -> Self {
        RuntimeSummary {
            agent_runtime_id: r.agent_runtime_id.clone(),
            account: r.account.clone(),
            harness: r.harness.clone(),
            tasks: r.tasks.len(),
            revoked: r.revoked,
        }
    }
}

struct Runtime {
    key: VerifyingKey,
    account: String,
    harness: String,
    tasks: std::collections::HashSet<String>,
    revoked: bool,
    bucket: Bucket,
}

/// Per-runtime token bucket: `max_requests_per_minute` tokens, refilled evenly over a minute.
/// Integer arithmetic: a token is 60,000 units and a minute refills `capacity` units per
/// millisecond, so refills are exact.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    units: u64,
    refilled_at: SystemTime,
}

const UNITS_PER_TOKEN: u64 = 60_000;

impl Bucket {
    /// A full bucket (it is capped at its capacity at the first request).
    fn full() -> Self {
        Bucket {
            units: u64::MAX,
            refilled_at: SystemTime::UNIX_EPOCH,
        }
    }

    /// Takes one token at `now`; false when none is left.
    fn take(&mut self, per_minute: u32, now: SystemTime) -> bool {
        let per_minute = u64::from(per_minute.max(1));
        // A clock that went back refills nothing.
        let elapsed_ms = now
            .duration_since(self.refilled_at)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.units = self
            .units
            .saturating_add(elapsed_ms.saturating_mul(per_minute))
            .min(per_minute * UNITS_PER_TOKEN);
        if now > self.refilled_at {
            self.refilled_at = now;
        }
        match self.units.checked_sub(UNITS_PER_TOKEN) {
            Some(left) => {
                self.units = left;
                true
            }
            None => false,
        }
    }
}

/// Assertions remembered for counting repeats at most (a metric: past it, new ones go uncounted).
const MAX_RECENT_ASSERTIONS: usize = 100_000;

/// Verified assertions of the last two windows, by what was signed, and when they were swept.
struct RecentAssertions {
    seen: HashMap<String, SystemTime>,
    swept: SystemTime,
}

impl Default for RecentAssertions {
    fn default() -> Self {
        RecentAssertions {
            seen: HashMap::new(),
            swept: SystemTime::UNIX_EPOCH,
        }
    }
}

#[derive(Deserialize)]
struct AssertionJson {
    agent_runtime_id: Option<String>,
    signature: Option<String>,
    task_id: Option<String>,
    timestamp: Option<String>,
}

/// Why a registration or a change was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The public key is not `ssh-ed25519 <base64>` (400).
    #[error("expected an `ssh-ed25519 <base64>` public key")]
    BadKey,
    /// The request did not verify (401, or 429 for a rate limit).
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The backend could not keep it (503: nothing was registered).
    #[error("agent identities cannot be kept: {0}")]
    NotKept(String),
    /// The account has `max_runtimes_per_account` unrevoked runtimes, or the runtime
    /// `max_tasks_per_runtime` tasks (403); `code` names which.
    #[error("{what} reached its limit of {limit}")]
    Limit {
        /// `agent_runtime_limit` or `agent_task_limit`.
        code: &'static str,
        /// What is full.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
}

/// How long a runtime found in no backend is not looked up again (bounds the lookups a stream of
/// made-up ids can cause).
const MISS_MEMORY: Duration = Duration::from_secs(1);
/// Runtime ids remembered as missing at most.
const MAX_MISSES: usize = 10_000;
/// Backend lookups a collector makes per second at most (bounds what a flood of unknown ids
/// costs the shared store).
const MAX_LOOKUPS_PER_SECOND: u32 = 100;

/// Registered runtimes and tasks, and the counters of `/metrics`.
pub struct IdentityRegistry {
    config: AgentIdentityServerConfig,
    backend: Option<Arc<dyn IdentityBackend>>,
    runtimes: Mutex<HashMap<String, Runtime>>,
    /// Runtimes recently looked up and found nowhere, and when.
    misses: Mutex<HashMap<String, Instant>>,
    /// This second's backend lookups: when the second began, and how many so far.
    lookups: Mutex<(Instant, u32)>,
    lookups_skipped: AtomicU64,
    // Assertions verified inside the window, to count repeats (accepted; see the module doc).
    recent: Mutex<RecentAssertions>,
    accepted: AtomicU64,
    repeats: AtomicU64,
    rejected: [AtomicU64; 11],
}

impl std::fmt::Debug for IdentityRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityRegistry")
            .field("runtimes", &self.list().len())
            .finish_non_exhaustive()
    }
}

/// Parses `ssh-ed25519 <base64>` into a key.
pub fn parse_ssh_ed25519(text: &str) -> Option<VerifyingKey> {
    let b64 = text.trim().strip_prefix("ssh-ed25519 ")?;
    let b64 = b64.split_whitespace().next()?;
    let blob = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let (name, rest) = read_ssh_string(&blob)?;
    if name != b"ssh-ed25519" {
        return None;
    }
    let (key, rest) = read_ssh_string(rest)?;
    if !rest.is_empty() {
        return None;
    }
    VerifyingKey::from_bytes(key.try_into().ok()?).ok()
}

/// `key` as `ssh-ed25519 <base64>`, the form [`parse_ssh_ed25519`] reads (what an agent sends
/// when it registers).
pub fn format_ssh_ed25519(key: &VerifyingKey) -> String {
    let mut blob = Vec::new();
    for part in [b"ssh-ed25519".as_slice(), key.as_bytes().as_slice()] {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        blob.extend_from_slice(&len.to_be_bytes());
        blob.extend_from_slice(part);
    }
    format!(
        "ssh-ed25519 {}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

fn read_ssh_string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let value = bytes.get(4..4 + len)?;
    Some((value, bytes.get(4 + len..)?))
}

/// Whether `id` has the shape of an id this collector makes (`rt_` and 32 hex digits): anything
/// else is unknown without asking the backend.
fn could_be_runtime_id(id: &str) -> bool {
    id.strip_prefix("rt_")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn random_id(prefix: &str) -> String {
    let bytes: [u8; 16] = rand::random();
    let mut s = String::with_capacity(prefix.len() + 32);
    s.push_str(prefix);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Seals `plaintext` (libsodium `crypto_box_seal`) to the X25519 form of `key` (the Edwards to
/// Montgomery map of the Ed25519 public key); standard base64 with padding.
pub fn seal_to(key: &VerifyingKey, plaintext: &str) -> Option<String> {
    let public = crypto_box::PublicKey::from(key.to_montgomery().to_bytes());
    let sealed = public.seal(&mut OsRng, plaintext.as_bytes()).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(sealed))
}

fn decode_signature(text: &str) -> Option<Signature> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    Signature::from_slice(&bytes).ok()
}

impl IdentityRegistry {
    /// An empty in-memory registry with `config`'s window and rate limit.
    pub fn new(config: AgentIdentityServerConfig) -> Self {
        Self {
            config,
            backend: None,
            runtimes: Mutex::new(HashMap::new()),
            misses: Mutex::new(HashMap::new()),
            lookups: Mutex::new((Instant::now(), 0)),
            lookups_skipped: AtomicU64::new(0),
            recent: Mutex::new(RecentAssertions::default()),
            accepted: AtomicU64::new(0),
            repeats: AtomicU64::new(0),
            rejected: Default::default(),
        }
    }

    /// A registry kept by `backend`, starting from `stored` (what it holds, when known; else
    /// runtimes are read through as they are used); `Err` names a runtime with a bad key.
    pub fn with_backend(
        config: AgentIdentityServerConfig,
        backend: Arc<dyn IdentityBackend>,
        stored: Vec<StoredRuntime>,
    ) -> Result<Self, String> {
        let mut registry = Self::new(config);
        let runtimes = stored
            .into_iter()
            .map(|r| runtime_from(r, backend.as_ref()))
            .collect::<Result<_, _>>()?;
        registry.runtimes = Mutex::new(runtimes);
        registry.backend = Some(backend);
        Ok(registry)
    }

    /// Where registrations are kept, for messages.
    pub fn describe(&self) -> String {
        self.backend
            .as_ref()
            .map_or_else(|| "memory".to_owned(), |b| b.describe())
    }

    fn runtimes(&self) -> std::sync::MutexGuard<'_, HashMap<String, Runtime>> {
        self.runtimes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Has the backend keep a change; without a backend there is nothing to do.
    async fn keep<'a>(
        &'a self,
        change: impl FnOnce(
            &'a dyn IdentityBackend,
        ) -> futures::future::BoxFuture<'a, Result<(), String>>,
    ) -> Result<(), String> {
        match &self.backend {
            Some(backend) => change(backend.as_ref()).await,
            None => Ok(()),
        }
    }

    /// Applies what was withdrawn in the backend: revocations and forgotten tasks. Rate-limit
    /// buckets are this process's own and are kept.
    pub async fn poll(&self) -> Result<(), String> {
        let Some(backend) = &self.backend else {
            return Ok(());
        };
        let Some(Withdrawals { revoked, forgotten }) = backend.changes().await? else {
            return Ok(());
        };
        let mut runtimes = self.runtimes();
        for id in revoked {
            if let Some(r) = runtimes.get_mut(&id) {
                r.revoked = true;
            }
        }
        for (id, task) in forgotten {
            if let Some(r) = runtimes.get_mut(&id) {
                r.tasks.remove(&task);
            }
        }
        Ok(())
    }

    /// Reads the runtime an assertion names from the backend when memory lacks it or its task
    /// (registered through another collector, or since this one started). For a runtime memory
    /// knows, only an assertion its key signed is looked up: a made-up task id costs the backend
    /// nothing. Malformed credentials are left to [`Self::verify`], as are lookups over
    /// [`MAX_LOOKUPS_PER_SECOND`] (counted).
    pub async fn look_up(&self, credential: &str) {
        let Ok(assertion) = Assertion::parse(credential) else {
            return;
        };
        let worth_it = match self.runtimes().get(&assertion.runtime_id) {
            Some(r) => {
                !r.tasks.contains(&assertion.task_id) && assertion.check_signature(&r.key).is_ok()
            }
            None => true,
        };
        if worth_it {
            self.look_up_runtime(&assertion.runtime_id).await;
        }
    }

    /// Reads a runtime from the backend into memory (keeping its rate-limit bucket), unless it
    /// was looked up in vain within the last second.
    async fn look_up_runtime(&self, runtime_id: &str) {
        let Some(backend) = &self.backend else {
            return;
        };
        if !could_be_runtime_id(runtime_id)
            || self.missed_recently(runtime_id)
            || !self.lookup_allowed()
        {
            return;
        }
        match backend.runtime(runtime_id).await {
            Ok(Some(stored)) => match runtime_from(stored, backend.as_ref()) {
                Ok((id, mut runtime)) => {
                    let mut runtimes = self.runtimes();
                    if let Some(old) = runtimes.get(&id) {
                        runtime.bucket = old.bucket;
                        // Read before a revocation made here meanwhile: revocations are final.
                        runtime.revoked |= old.revoked;
                    }
                    runtimes.insert(id, runtime);
                }
                Err(e) => tracing::warn!(error = %e, "agent runtime not usable"),
            },
            Ok(None) => self.note_miss(runtime_id.to_owned()),
            Err(e) => tracing::warn!(error = %e, "agent runtime not looked up"),
        }
    }

    /// Spends one of this second's lookups; `false` (and counted) when none is left.
    fn lookup_allowed(&self) -> bool {
        let mut window = self.lookups.lock().unwrap_or_else(|p| p.into_inner());
        if window.0.elapsed() >= Duration::from_secs(1) {
            *window = (Instant::now(), 0);
        }
        if window.1 >= MAX_LOOKUPS_PER_SECOND {
            self.lookups_skipped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        window.1 += 1;
        true
    }

    fn missed_recently(&self, runtime_id: &str) -> bool {
        let misses = self.misses.lock().unwrap_or_else(|p| p.into_inner());
        misses
            .get(runtime_id)
            .is_some_and(|at| at.elapsed() < MISS_MEMORY)
    }

    fn note_miss(&self, runtime_id: String) {
        let mut misses = self.misses.lock().unwrap_or_else(|p| p.into_inner());
        misses.retain(|_, at| at.elapsed() < MISS_MEMORY);
        if misses.len() >= MAX_MISSES {
            misses.clear();
        }
        misses.insert(runtime_id, Instant::now());
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.config.window_seconds)
    }

    /// `Retry-After` of a rate-limited runtime: the time one token takes to come back.
    pub fn retry_after_seconds(&self) -> u32 {
        60u32.div_ceil(self.config.max_requests_per_minute.max(1))
    }

    /// `task_id` sealed to the X25519 key of `agent_runtime_id`'s Ed25519 key, in standard
    /// base64; `None` when the runtime is unknown.
    pub fn seal_task_id(&self, agent_runtime_id: &str, task_id: &str) -> Option<String> {
        let key = self.runtimes().get(agent_runtime_id)?.key;
        seal_to(&key, task_id)
    }

    /// Registers a runtime for `account`, kept before it is answered.
    pub async fn register_runtime(
        &self,
        account: &str,
        public_key: &str,
        harness: &str,
    ) -> Result<String, RegistryError> {
        let key = parse_ssh_ed25519(public_key).ok_or(RegistryError::BadKey)?;
        // Counted among the runtimes this collector knows (all of them with SQLite; those seen
        // so far in a fleet on ClickHouse).
        let limit = self.config.max_runtimes_per_account;
        let live = self
            .runtimes()
            .values()
            .filter(|r| r.account == account && !r.revoked)
            .count();
        if live >= limit {
            return Err(RegistryError::Limit {
                code: "agent_runtime_limit",
                what: "the account's unrevoked agent runtimes",
                limit,
            });
        }
        let stored = StoredRuntime {
            agent_runtime_id: random_id("rt_"),
            public_key: public_key.trim().to_owned(),
            account: account.to_owned(),
            harness: crate::event::truncate(harness, 64).to_owned(),
            tasks: Vec::new(),
            revoked: false,
        };
        self.keep(|b| b.add_runtime(&stored))
            .await
            .map_err(RegistryError::NotKept)?;
        let id = stored.agent_runtime_id.clone();
        self.runtimes().insert(id.clone(), runtime(key, stored));
        Ok(id)
    }

    /// Registers a task after checking the signature over `"{runtime}:{timestamp}"`; the task is
    /// kept before it is answered.
    pub async fn register_task(
        &self,
        agent_runtime_id: &str,
        timestamp: &str,
        signature: &str,
        now: SystemTime,
    ) -> Result<String, RegistryError> {
        if !self.runtimes().contains_key(agent_runtime_id) {
            // Registered through another collector of the fleet, perhaps.
            self.look_up_runtime(agent_runtime_id).await;
        }
        let result = self.check_task_registration(agent_runtime_id, timestamp, signature, now);
        if let Err(r) = result {
            self.count_rejection(r);
        }
        let task = result?;
        let limit = self.config.max_tasks_per_runtime;
        if self
            .runtimes()
            .get(agent_runtime_id)
            .is_some_and(|r| r.tasks.len() >= limit)
        {
            return Err(RegistryError::Limit {
                code: "agent_task_limit",
                what: "the runtime's agent tasks",
                limit,
            });
        }
        self.keep(|b| b.set_task(agent_runtime_id, &task, true))
            .await
            .map_err(RegistryError::NotKept)?;
        if let Some(r) = self.runtimes().get_mut(agent_runtime_id) {
            r.tasks.insert(task.clone());
        }
        Ok(task)
    }

    /// Checks a task registration and spends the runtime's budget; the task id it returns is
    /// not kept yet.
    fn check_task_registration(
        &self,
        agent_runtime_id: &str,
        timestamp: &str,
        signature: &str,
        now: SystemTime,
    ) -> Result<String, Rejection> {
        self.check_time(timestamp, now)?;
        let signature = decode_signature(signature).ok_or(Rejection::BadBase64)?;
        let mut runtimes = self.runtimes();
        let runtime = runtimes
            .get_mut(agent_runtime_id)
            .ok_or(Rejection::UnknownRuntime)?;
        if runtime.revoked {
            return Err(Rejection::Revoked);
        }
        let message = format!("{agent_runtime_id}:{timestamp}");
        runtime
            .key
            .verify(message.as_bytes(), &signature)
            .map_err(|_| Rejection::BadSignature)?;
        // Every task grows the registry: registrations spend the runtime's budget too.
        if !runtime
            .bucket
            .take(self.config.max_requests_per_minute, now)
        {
            return Err(Rejection::RateLimited);
        }
        Ok(random_id("task_"))
    }

    /// Verifies an `AgentAssertion` credential at `now`; rejections are counted.
    pub fn verify(&self, credential: &str, now: SystemTime) -> Result<VerifiedAgent, Rejection> {
        let result = self.check_assertion(credential, now);
        match &result {
            Ok(_) => {
                self.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(r) => self.count_rejection(*r),
        }
        result
    }

    fn count_rejection(&self, r: Rejection) {
        if let Some(c) = self.rejected.get(r.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn check_time(&self, timestamp: &str, now: SystemTime) -> Result<(), Rejection> {
        let at = humantime::parse_rfc3339(timestamp).map_err(|_| Rejection::BadTimestamp)?;
        // Checked: a window that reaches past what `SystemTime` holds covers every time there.
        if at.checked_add(self.window()).is_some_and(|end| end < now) {
            return Err(Rejection::Expired);
        }
        if now.checked_add(self.window()).is_some_and(|end| at > end) {
            return Err(Rejection::FutureDated);
        }
        Ok(())
    }

    fn check_assertion(
        &self,
        credential: &str,
        now: SystemTime,
    ) -> Result<VerifiedAgent, Rejection> {
        let assertion = Assertion::parse(credential)?;
        self.check_time(&assertion.timestamp, now)?;
        let mut runtimes = self.runtimes();
        let runtime = runtimes
            .get_mut(&assertion.runtime_id)
            .ok_or(Rejection::UnknownRuntime)?;
        if runtime.revoked {
            return Err(Rejection::Revoked);
        }
        if !runtime.tasks.contains(&assertion.task_id) {
            return Err(Rejection::UnknownTask);
        }
        assertion.check_signature(&runtime.key)?;
        if !runtime
            .bucket
            .take(self.config.max_requests_per_minute, now)
        {
            return Err(Rejection::RateLimited);
        }
        let account = runtime.account.clone();
        drop(runtimes);
        self.note_repeat(&assertion, now);
        Ok(VerifiedAgent {
            agent_runtime_id: assertion.runtime_id,
            task_id: assertion.task_id,
            account,
        })
    }

    /// Counts an assertion verified before within the window. Keyed by what was signed, not by
    /// the header: JSON padded with other fields is the same assertion (and cannot grow the map),
    /// and only a runtime's key makes new entries.
    fn note_repeat(&self, assertion: &Assertion, now: SystemTime) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let window = self.window().saturating_mul(2);
        // Swept once a second, not at every request (the map can hold many).
        let due = now
            .duration_since(recent.swept)
            .map_or(true, |d| d >= Duration::from_secs(1));
        if due {
            recent
                .seen
                .retain(|_, seen| now.duration_since(*seen).map_or(true, |d| d <= window));
            recent.swept = now;
        }
        let key = format!(
            "{}:{}:{}:{}",
            assertion.runtime_id, assertion.task_id, assertion.timestamp, assertion.signature
        );
        if recent.seen.contains_key(&key) {
            self.repeats.fetch_add(1, Ordering::Relaxed);
        } else if recent.seen.len() < MAX_RECENT_ASSERTIONS {
            recent.seen.insert(key, now);
        }
    }

    /// Revokes a runtime at once, here and in the backend (`Ok(false)` when neither knows it;
    /// `Err` when the backend cannot keep it, and then nothing changed).
    pub async fn revoke(&self, agent_runtime_id: &str) -> Result<bool, String> {
        if !self.knows(agent_runtime_id).await? {
            return Ok(false);
        }
        self.keep(|b| b.revoke(agent_runtime_id)).await?;
        if let Some(r) = self.runtimes().get_mut(agent_runtime_id) {
            r.revoked = true;
        }
        Ok(true)
    }

    /// Forgets one task of a runtime at once, so its assertions are refused with
    /// `agent_task_unknown` (`Ok(false)` when the runtime or task is unknown; `Err` when the
    /// backend cannot keep it, and then nothing changed).
    pub async fn forget_task(&self, agent_runtime_id: &str, task_id: &str) -> Result<bool, String> {
        let known_here = self
            .runtimes()
            .get(agent_runtime_id)
            .map(|r| r.tasks.contains(task_id));
        let known = match (known_here, &self.backend) {
            (Some(true), _) => true,
            (_, Some(backend)) => backend
                .runtime(agent_runtime_id)
                .await?
                .is_some_and(|r| r.tasks.iter().any(|t| t == task_id)),
            (_, None) => false,
        };
        if !known {
            return Ok(false);
        }
        self.keep(|b| b.set_task(agent_runtime_id, task_id, false))
            .await?;
        if let Some(r) = self.runtimes().get_mut(agent_runtime_id) {
            r.tasks.remove(task_id);
        }
        Ok(true)
    }

    /// Whether memory or the backend knows the runtime.
    async fn knows(&self, agent_runtime_id: &str) -> Result<bool, String> {
        if self.runtimes().contains_key(agent_runtime_id) {
            return Ok(true);
        }
        match &self.backend {
            Some(backend) => Ok(backend.runtime(agent_runtime_id).await?.is_some()),
            None => Ok(false),
        }
    }

    /// Every registered runtime, sorted by id.
    pub fn list(&self) -> Vec<RuntimeSummary> {
        let mut out: Vec<RuntimeSummary> = self
            .runtimes()
            .iter()
            .map(|(id, r)| RuntimeSummary {
                agent_runtime_id: id.clone(),
                account: r.account.clone(),
                harness: r.harness.clone(),
                tasks: r.tasks.len(),
                revoked: r.revoked,
            })
            .collect();
        out.sort_by(|a, b| a.agent_runtime_id.cmp(&b.agent_runtime_id));
        out
    }

    /// Exact repeats of an accepted header inside the window.
    pub fn repeats(&self) -> u64 {
        self.repeats.load(Ordering::Relaxed)
    }

    /// Assertions refused for `reason`.
    pub fn rejected(&self, reason: Rejection) -> u64 {
        self.rejected
            .get(reason.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Prometheus text for the agent-identity counters.
    pub fn render_metrics(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP tally_collector_agent_assertions_accepted_total AgentAssertions that verified.\n\
             # TYPE tally_collector_agent_assertions_accepted_total counter\n\
             tally_collector_agent_assertions_accepted_total {}\n\
             # HELP tally_collector_agent_assertion_repeats_total Exact repeats of a verified header inside the window (accepted).\n\
             # TYPE tally_collector_agent_assertion_repeats_total counter\n\
             tally_collector_agent_assertion_repeats_total {}\n\
             # HELP tally_collector_agent_lookups_skipped_total Lookups of unknown agent runtimes in the shared registry skipped over the per-second limit (their requests were refused as unknown).\n\
             # TYPE tally_collector_agent_lookups_skipped_total counter\n\
             tally_collector_agent_lookups_skipped_total {}\n\
             # HELP tally_collector_agent_assertions_rejected_total AgentAssertions and task registrations refused, by reason.\n\
             # TYPE tally_collector_agent_assertions_rejected_total counter",
            self.accepted.load(Ordering::Relaxed),
            self.repeats(),
            self.lookups_skipped.load(Ordering::Relaxed)
        );
        for r in Rejection::ALL {
            let _ = writeln!(
                out,
                "tally_collector_agent_assertions_rejected_total{{reason=\"{}\"}} {}",
                r.code(),
                self.rejected(r)
            );
        }
        out
    }
}

/// A runtime as memory holds it; `Err` names a stored runtime whose key does not parse.
fn runtime_from(
    stored: StoredRuntime,
    backend: &dyn IdentityBackend,
) -> Result<(String, Runtime), String> {
    let key = parse_ssh_ed25519(&stored.public_key).ok_or_else(|| {
        format!(
            "{}: runtime {} has an invalid key",
            backend.describe(),
            stored.agent_runtime_id
        )
    })?;
    Ok((stored.agent_runtime_id.clone(), runtime(key, stored)))
}

fn runtime(key: VerifyingKey, stored: StoredRuntime) -> Runtime {
    Runtime {
        key,
        account: stored.account,
        harness: stored.harness,
        tasks: stored.tasks.into_iter().collect(),
        revoked: stored.revoked,
        bucket: Bucket::full(),
    }
}

/// The fields of an `AgentAssertion` credential (not yet verified).
struct Assertion {
    runtime_id: String,
    task_id: String,
    timestamp: String,
    signature: String,
}

impl Assertion {
    /// Decodes base64url, then JSON; every field must be present and not empty.
    fn parse(credential: &str) -> Result<Self, Rejection> {
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(credential.trim_end_matches('='))
            .map_err(|_| Rejection::BadBase64)?;
        let parsed: AssertionJson =
            serde_json::from_slice(&json).map_err(|_| Rejection::BadJson)?;
        let field = |v: Option<String>| v.filter(|s| !s.is_empty()).ok_or(Rejection::MissingField);
        Ok(Assertion {
            runtime_id: field(parsed.agent_runtime_id)?,
            task_id: field(parsed.task_id)?,
            timestamp: field(parsed.timestamp)?,
            signature: field(parsed.signature)?,
        })
    }

    /// Checks the signature over `"{runtime}:{task}:{timestamp}"` with `key`.
    fn check_signature(&self, key: &VerifyingKey) -> Result<(), Rejection> {
        let signature = decode_signature(&self.signature).ok_or(Rejection::BadSignature)?;
        let message = format!("{}:{}:{}", self.runtime_id, self.task_id, self.timestamp);
        key.verify(message.as_bytes(), &signature)
            .map_err(|_| Rejection::BadSignature)
    }
}

#[cfg(test)]
#[path = "agent_identity_tests.rs"]
mod tests;

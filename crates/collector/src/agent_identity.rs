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

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use crypto_box::aead::OsRng;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::config::AgentIdentityServerConfig;

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

struct Runtime {
    key: VerifyingKey,
    public_key: String,
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

#[derive(Deserialize)]
struct AssertionJson {
    agent_runtime_id: Option<String>,
    signature: Option<String>,
    task_id: Option<String>,
    timestamp: Option<String>,
}

/// One runtime in the registry file (public material only).
#[derive(Serialize, Deserialize)]
struct StoredRuntime {
    agent_runtime_id: String,
    public_key: String,
    account: String,
    harness: String,
    tasks: Vec<String>,
    revoked: bool,
}

#[derive(Serialize, Deserialize, Default)]
struct StoredRegistry {
    runtimes: Vec<StoredRuntime>,
}

/// How often a running collector looks for changes made by `tally collector identities`.
const DISK_CHECK_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Default)]
struct DiskState {
    checked: Option<Instant>,
    mtime: Option<SystemTime>,
}

/// Registered runtimes and tasks, and the counters of `/metrics`.
pub struct IdentityRegistry {
    config: AgentIdentityServerConfig,
    path: Option<PathBuf>,
    disk: Mutex<DiskState>,
    runtimes: Mutex<HashMap<String, Runtime>>,
    // Headers seen inside the window, to count exact repeats (accepted; see the module doc).
    recent: Mutex<HashMap<String, SystemTime>>,
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

fn read_ssh_string(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let value = bytes.get(4..4 + len)?;
    Some((value, bytes.get(4 + len..)?))
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
            path: None,
            disk: Mutex::new(DiskState::default()),
            runtimes: Mutex::new(HashMap::new()),
            recent: Mutex::new(HashMap::new()),
            accepted: AtomicU64::new(0),
            repeats: AtomicU64::new(0),
            rejected: Default::default(),
        }
    }

    /// A registry kept in `path` (created on first registration); `Err` names what is wrong.
    pub fn open(config: AgentIdentityServerConfig, path: Option<PathBuf>) -> Result<Self, String> {
        let mut registry = Self::new(config);
        if let Some(path) = path {
            let (runtimes, mtime) = load(&path)?;
            registry.runtimes = Mutex::new(runtimes);
            registry.disk = Mutex::new(DiskState {
                checked: Some(Instant::now()),
                mtime,
            });
            registry.path = Some(path);
        }
        Ok(registry)
    }

    /// The runtimes, re-read from the file when another process (the CLI) changed it.
    fn runtimes(&self) -> std::sync::MutexGuard<'_, HashMap<String, Runtime>> {
        let mut runtimes = self.runtimes.lock().unwrap_or_else(|p| p.into_inner());
        let Some(path) = &self.path else {
            return runtimes;
        };
        let mut disk = self.disk.lock().unwrap_or_else(|p| p.into_inner());
        if disk
            .checked
            .is_some_and(|c| c.elapsed() < DISK_CHECK_INTERVAL)
        {
            return runtimes;
        }
        disk.checked = Some(Instant::now());
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if mtime != disk.mtime {
            match load(path) {
                Ok((mut loaded, mtime)) => {
                    // Rate-limit buckets are process state: keep them across a reload.
                    for (id, r) in loaded.iter_mut() {
                        if let Some(old) = runtimes.get(id) {
                            r.bucket = old.bucket;
                        }
                    }
                    *runtimes = loaded;
                    disk.mtime = mtime;
                }
                Err(e) => tracing::warn!(error = %e, "agent identity registry not reloaded"),
            }
        }
        drop(disk);
        runtimes
    }

    /// Writes the registry file (temp file + rename), if there is one; a failure is logged (the
    /// change holds in memory and is lost only on restart) and returned.
    fn save(&self, runtimes: &HashMap<String, Runtime>) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut stored = StoredRegistry::default();
        for (id, r) in runtimes {
            let mut tasks: Vec<String> = r.tasks.iter().cloned().collect();
            tasks.sort();
            stored.runtimes.push(StoredRuntime {
                agent_runtime_id: id.clone(),
                public_key: r.public_key.clone(),
                account: r.account.clone(),
                harness: r.harness.clone(),
                tasks,
                revoked: r.revoked,
            });
        }
        stored
            .runtimes
            .sort_by(|a, b| a.agent_runtime_id.cmp(&b.agent_runtime_id));
        let result = serde_json::to_vec_pretty(&stored)
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let tmp = path.with_extension("json.tmp");
                std::fs::write(&tmp, bytes)?;
                std::fs::rename(&tmp, path)
            });
        match result {
            Ok(()) => {
                let mut disk = self.disk.lock().unwrap_or_else(|p| p.into_inner());
                disk.mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
                Ok(())
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot save agent identities");
                Err(format!("{}: {e}", path.display()))
            }
        }
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

    /// Registers a runtime for `account`; `None` when the public key is not `ssh-ed25519`.
    pub fn register_runtime(
        &self,
        account: &str,
        public_key: &str,
        harness: &str,
    ) -> Option<String> {
        let key = parse_ssh_ed25519(public_key)?;
        let id = random_id("rt_");
        let mut runtimes = self.runtimes();
        runtimes.insert(
            id.clone(),
            Runtime {
                key,
                public_key: public_key.trim().to_owned(),
                account: account.to_owned(),
                harness: crate::event::truncate(harness, 64).to_owned(),
                tasks: Default::default(),
                revoked: false,
                bucket: Bucket::full(),
            },
        );
        // A failed save is logged; the runtime works until the collector restarts.
        let _ = self.save(&runtimes);
        Some(id)
    }

    /// Registers a task after checking the signature over `"{runtime}:{timestamp}"`.
    pub fn register_task(
        &self,
        agent_runtime_id: &str,
        timestamp: &str,
        signature: &str,
        now: SystemTime,
    ) -> Result<String, Rejection> {
        let result = self.check_task_registration(agent_runtime_id, timestamp, signature, now);
        if let Err(r) = result {
            self.count_rejection(r);
        }
        result
    }

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
        let task = random_id("task_");
        runtime.tasks.insert(task.clone());
        let _ = self.save(&runtimes);
        Ok(task)
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
        if at + self.window() < now {
            return Err(Rejection::Expired);
        }
        if at > now + self.window() {
            return Err(Rejection::FutureDated);
        }
        Ok(())
    }

    fn check_assertion(
        &self,
        credential: &str,
        now: SystemTime,
    ) -> Result<VerifiedAgent, Rejection> {
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(credential.trim_end_matches('='))
            .map_err(|_| Rejection::BadBase64)?;
        let parsed: AssertionJson =
            serde_json::from_slice(&json).map_err(|_| Rejection::BadJson)?;
        let field = |v: Option<String>| v.filter(|s| !s.is_empty()).ok_or(Rejection::MissingField);
        let runtime_id = field(parsed.agent_runtime_id)?;
        let task_id = field(parsed.task_id)?;
        let timestamp = field(parsed.timestamp)?;
        let signature = field(parsed.signature)?;
        self.check_time(&timestamp, now)?;
        let signature = decode_signature(&signature).ok_or(Rejection::BadSignature)?;
        let mut runtimes = self.runtimes();
        let runtime = runtimes
            .get_mut(&runtime_id)
            .ok_or(Rejection::UnknownRuntime)?;
        if runtime.revoked {
            return Err(Rejection::Revoked);
        }
        if !runtime.tasks.contains(&task_id) {
            return Err(Rejection::UnknownTask);
        }
        let message = format!("{runtime_id}:{task_id}:{timestamp}");
        runtime
            .key
            .verify(message.as_bytes(), &signature)
            .map_err(|_| Rejection::BadSignature)?;
        if !runtime
            .bucket
            .take(self.config.max_requests_per_minute, now)
        {
            return Err(Rejection::RateLimited);
        }
        let account = runtime.account.clone();
        drop(runtimes);
        self.note_repeat(credential, now);
        Ok(VerifiedAgent {
            agent_runtime_id: runtime_id,
            task_id,
            account,
        })
    }

    fn note_repeat(&self, credential: &str, now: SystemTime) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let window = self.window() * 2;
        recent.retain(|_, seen| now.duration_since(*seen).map_or(true, |d| d <= window));
        if recent.insert(credential.to_owned(), now).is_some() {
            self.repeats.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Revokes a runtime at once (`Ok(false)` when unknown; `Err` when it cannot be saved, though
    /// it is revoked in this process).
    pub fn revoke(&self, agent_runtime_id: &str) -> Result<bool, String> {
        let mut runtimes = self.runtimes();
        let Some(runtime) = runtimes.get_mut(agent_runtime_id) else {
            return Ok(false);
        };
        runtime.revoked = true;
        self.save(&runtimes)?;
        Ok(true)
    }

    /// Forgets one task of a runtime at once, so its assertions are refused with
    /// `agent_task_unknown` (`Ok(false)` when the runtime or task is unknown; `Err` when it
    /// cannot be saved, though it is forgotten in this process).
    pub fn forget_task(&self, agent_runtime_id: &str, task_id: &str) -> Result<bool, String> {
        let mut runtimes = self.runtimes();
        let Some(runtime) = runtimes.get_mut(agent_runtime_id) else {
            return Ok(false);
        };
        if !runtime.tasks.remove(task_id) {
            return Ok(false);
        }
        self.save(&runtimes)?;
        Ok(true)
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
             # HELP tally_collector_agent_assertions_rejected_total AgentAssertions and task registrations refused, by reason.\n\
             # TYPE tally_collector_agent_assertions_rejected_total counter",
            self.accepted.load(Ordering::Relaxed),
            self.repeats()
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

/// Reads the registry file; an absent file is an empty registry.
fn load(path: &Path) -> Result<(HashMap<String, Runtime>, Option<SystemTime>), String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((HashMap::new(), None)),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let stored: StoredRegistry =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut runtimes = HashMap::new();
    for r in stored.runtimes {
        let key = parse_ssh_ed25519(&r.public_key).ok_or_else(|| {
            format!(
                "{}: runtime {} has an invalid key",
                path.display(),
                r.agent_runtime_id
            )
        })?;
        runtimes.insert(
            r.agent_runtime_id,
            Runtime {
                key,
                public_key: r.public_key,
                account: r.account,
                harness: r.harness,
                tasks: r.tasks.into_iter().collect(),
                revoked: r.revoked,
                bucket: Bucket::full(),
            },
        );
    }
    Ok((runtimes, mtime))
}

#[cfg(test)]
#[path = "agent_identity_tests.rs"]
mod tests;

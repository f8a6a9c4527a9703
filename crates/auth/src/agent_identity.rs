//! Agent identity as Codex 0.169 does it: an Ed25519 key, a registered runtime, one task per
//! thread plus one private background task, and `AgentAssertion` headers signed per request.

use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signer, SigningKey};
use http::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::auth_json::{self, AgentIdentityRecord, AuthDotJson, ThreadTask};
use crate::error::AuthError;
use crate::registration::{is_runtime_gone, Failure, Registrar};
use crate::supported_hosts::{host_allowed, host_of};
use crate::thread_task_store::ThreadTaskStore;

/// File holding the private key (PKCS#8 DER, mode 0600) under the home.
pub const KEY_FILE: &str = "agent_identity_key.der";

/// Thread tasks kept in `auth.json` at most (the oldest are forgotten first).
const MAX_PERSISTED_THREAD_TASKS: usize = 256;

/// After a runtime was dropped (revoked or unknown at the backend) and registered again, another
/// drop within this time does not register again until it has passed: a backend that keeps
/// refusing gets bearer requests, not a registration loop.
pub const REREGISTER_COOLDOWN: Duration = Duration::from_secs(10 * 60);

/// Deadline on waiting for another registration to finish.
const REGISTER_LOCK_DEADLINE: Duration = Duration::from_secs(40);

/// After a thread's task could not be registered, its requests use the background task and do not
/// try again for this long (a backend that is down costs no latency per request).
pub const THREAD_TASK_RETRY_COOLDOWN: Duration = Duration::from_secs(60);

/// Agent identity settings, resolved from config.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentIdentityConfig {
    /// Base of the registration endpoints (`{base}/v1/agent/register`).
    pub authapi_base_url: String,
    /// `abom.agent_version`.
    pub agent_version: String,
    /// `abom.agent_harness_id`.
    pub agent_harness_id: String,
    /// `abom.running_location`.
    pub running_location: String,
    /// Hosts besides production and staging ChatGPT where agent identity is used
    /// (`[agent_identity] allowed_hosts`; `*.example.com` for subdomains). Registration goes to
    /// `authapi_base_url` only when its host is supported; otherwise requests stay on bearer.
    pub allowed_hosts: Vec<String>,
}

/// The decoded `AgentAssertion` payload; field order is the sorted order Codex sends.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentAssertion {
    /// The registered runtime.
    pub agent_runtime_id: String,
    /// Standard base64 Ed25519 signature over `"{agent_runtime_id}:{task_id}:{timestamp}"`.
    pub signature: String,
    /// The task the request belongs to.
    pub task_id: String,
    /// RFC 3339 UTC, whole seconds.
    pub timestamp: String,
}

impl std::fmt::Debug for AgentAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentAssertion")
            .field("agent_runtime_id", &self.agent_runtime_id)
            .field("task_id", &self.task_id)
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

impl AgentAssertion {
    /// Decodes the credential of an `Authorization: AgentAssertion <credential>` header value;
    /// `None` for anything else (a bearer header, bad base64 or JSON).
    pub fn from_header(value: &HeaderValue) -> Option<Self> {
        let credential = value.to_str().ok()?.strip_prefix("AgentAssertion ")?;
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(credential.trim())
            .ok()?;
        serde_json::from_slice(&json).ok()
    }
}

/// The message signed by an assertion.
pub fn assertion_message(agent_runtime_id: &str, task_id: &str, timestamp: &str) -> String {
    format!("{agent_runtime_id}:{task_id}:{timestamp}")
}

/// The message signed at task registration.
pub fn task_registration_message(agent_runtime_id: &str, timestamp: &str) -> String {
    format!("{agent_runtime_id}:{timestamp}")
}

/// An RFC 3339 UTC timestamp in whole seconds, as Codex writes them.
pub fn rfc3339_seconds(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The `ssh-ed25519 <base64>` form of a public key (the OpenSSH wire blob).
pub fn ssh_public_key(public: &[u8; 32]) -> String {
    let mut blob = Vec::with_capacity(51);
    for part in [b"ssh-ed25519".as_slice(), public.as_slice()] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    format!(
        "ssh-ed25519 {}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

/// Signs an assertion for `task_id` at `now` and encodes it as the header credential.
pub fn mint_assertion(
    key: &SigningKey,
    agent_runtime_id: &str,
    task_id: &str,
    now: SystemTime,
) -> String {
    let timestamp = rfc3339_seconds(now);
    let signature = key.sign(assertion_message(agent_runtime_id, task_id, &timestamp).as_bytes());
    let assertion = AgentAssertion {
        agent_runtime_id: agent_runtime_id.to_owned(),
        signature: base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
        task_id: task_id.to_owned(),
        timestamp,
    };
    // Serializing a struct of strings cannot fail; an empty payload would only be refused.
    let json = serde_json::to_vec(&assertion).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// Loads the key from `home`, or creates and stores one (PKCS#8, 0600).
pub fn load_or_create_key(home: &Path) -> Result<SigningKey, AuthError> {
    let path = home.join(KEY_FILE);
    match std::fs::read(&path) {
        Ok(der) => SigningKey::from_pkcs8_der(&der).map_err(|_| AuthError::Corrupt {
            path: path.clone(),
            message: "not a PKCS#8 Ed25519 private key".into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key(home),
        Err(e) => Err(AuthError::io(&path, e)),
    }
}

/// Creates a new key and stores it in `home` (PKCS#8, 0600), replacing any previous one.
pub fn create_key(home: &Path) -> Result<SigningKey, AuthError> {
    let path = home.join(KEY_FILE);
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let der = key.to_pkcs8_der().map_err(|_| AuthError::Corrupt {
        path: path.clone(),
        message: "cannot encode the new key".into(),
    })?;
    auth_json::write_private(&path, der.as_bytes())?;
    Ok(key)
}

/// When a dropped runtime may be registered again.
#[derive(Default)]
struct Recovery {
    /// When a runtime was last dropped and registered again.
    last: Option<Instant>,
    /// A second drop came within the cooldown: no registration before `last + cooldown`.
    paused: bool,
}

/// When a task the backend forgot may be registered again, and whether signing is paused.
#[derive(Default)]
struct TaskRecovery {
    /// When a task was last dropped and registered again.
    last: Option<Instant>,
    /// A second task refusal came within [`REREGISTER_COOLDOWN`]: requests use bearer until then.
    bearer_until: Option<Instant>,
}

/// A thread's task and the runtime that registered it.
#[derive(Clone)]
struct CachedTask {
    runtime: String,
    task: String,
}

/// A thread that wants its own task (it was prewarmed), and how its registration went.
#[derive(Default)]
struct WantedTask {
    /// Single flight: one registration of this thread's task at a time.
    lock: Arc<tokio::sync::Mutex<()>>,
    /// When its registration last failed; requests do not retry before the cooldown.
    failed_at: Option<Instant>,
}

/// A registered (or registering) agent runtime and its tasks.
pub struct AgentIdentity {
    home: PathBuf,
    config: AgentIdentityConfig,
    /// False when the backend host is not supported: nothing is registered, requests use bearer.
    supported: bool,
    // Replaced when a revoked runtime is dropped, so a stolen key is not registered again.
    key: RwLock<SigningKey>,
    registrar: Registrar,
    record: RwLock<Option<AgentIdentityRecord>>,
    // Who is logged in now (set by the manager at every change of credentials); only a record
    // registered under this login signs.
    principal: RwLock<Option<String>>,
    // Entries of a dropped runtime stay (never used: the runtime differs) so that the thread is
    // known to want a task of the new runtime.
    thread_tasks: Mutex<HashMap<String, CachedTask>>,
    wanted: Mutex<HashMap<String, WantedTask>>,
    store: RwLock<Option<Arc<dyn ThreadTaskStore>>>,
    // Single flight for registrations, so concurrent threads do not register twice.
    register_lock: tokio::sync::Mutex<()>,
    recovery: Mutex<Recovery>,
    task_recovery: Mutex<TaskRecovery>,
    fallback_logged: AtomicBool,
    skew_logged: AtomicBool,
}

impl std::fmt::Debug for AgentIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentIdentity")
            .field("authapi_base_url", &self.config.authapi_base_url)
            .field("supported", &self.supported)
            .field("runtime", &self.runtime_id())
            .finish_non_exhaustive()
    }
}

fn read<T: Clone>(lock: &RwLock<T>) -> T {
    match lock.read() {
        Ok(v) => v.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

fn write<T>(lock: &RwLock<T>, value: T) {
    match lock.write() {
        Ok(mut v) => *v = value,
        Err(poisoned) => *poisoned.into_inner() = value,
    }
}

impl AgentIdentity {
    pub(crate) fn new(
        home: &Path,
        config: AgentIdentityConfig,
        stored: Option<&AuthDotJson>,
    ) -> Result<Self, AuthError> {
        let key = load_or_create_key(home)?;
        let host = host_of(&config.authapi_base_url);
        let supported = host
            .as_deref()
            .is_some_and(|h| host_allowed(h, &config.allowed_hosts));
        if !supported {
            // The one log line of this fallback (note_fallback stays quiet afterwards).
            tracing::warn!(
                host = host.as_deref().unwrap_or("(not an http(s) URL)"),
                "agent identity is not supported with this backend host (only production and staging ChatGPT hosts and [agent_identity] allowed_hosts are); backend requests use bearer auth"
            );
        }
        // A runtime registered with another backend is not known to this one.
        let record = stored
            .and_then(|s| s.agent_identity.clone())
            .filter(|r| r.authapi_base_url == config.authapi_base_url);
        let thread_tasks = record
            .iter()
            .flat_map(|r| {
                r.thread_tasks.iter().map(|t| {
                    let cached = CachedTask {
                        runtime: r.agent_runtime_id.clone(),
                        task: t.task_id.clone(),
                    };
                    (t.thread_id.clone(), cached)
                })
            })
            .collect();
        Ok(Self {
            home: home.to_path_buf(),
            config,
            supported,
            key: RwLock::new(key),
            registrar: Registrar::new(),
            record: RwLock::new(record),
            principal: RwLock::new(None),
            thread_tasks: Mutex::new(thread_tasks),
            wanted: Mutex::new(HashMap::new()),
            store: RwLock::new(None),
            register_lock: tokio::sync::Mutex::new(()),
            recovery: Mutex::new(Recovery::default()),
            task_recovery: Mutex::new(TaskRecovery::default()),
            fallback_logged: AtomicBool::new(!supported),
            skew_logged: AtomicBool::new(false),
        })
    }

    /// Whether the backend host supports agent identity (else every request uses bearer).
    pub fn is_supported(&self) -> bool {
        self.supported
    }

    fn key(&self) -> SigningKey {
        read(&self.key)
    }

    /// The public key as registered.
    pub fn public_key(&self) -> String {
        ssh_public_key(&self.key().verifying_key().to_bytes())
    }

    /// The registration of the current login, if any: one made under another login (or before
    /// registrations named their login) counts as none, so it neither signs nor is reused.
    fn record(&self) -> Option<AgentIdentityRecord> {
        let principal = self.principal()?;
        read(&self.record).filter(|r| r.principal.as_deref() == Some(principal.as_str()))
    }

    fn principal(&self) -> Option<String> {
        read(&self.principal)
    }

    /// Records who is logged in now (`None`: no one).
    pub(crate) fn set_principal(&self, principal: Option<String>) {
        write(&self.principal, principal);
    }

    /// Writes `record` (or its absence) to `auth.json` and memory.
    fn set_record(&self, record: Option<AgentIdentityRecord>) -> Result<(), AuthError> {
        let mut file = auth_json::read(&self.home)?.unwrap_or_default();
        file.agent_identity = record.clone();
        auth_json::write(&self.home, &file)?;
        write(&self.record, record);
        Ok(())
    }

    /// The registered runtime id, if any.
    pub fn runtime_id(&self) -> Option<String> {
        self.record().map(|r| r.agent_runtime_id)
    }

    /// Keeps thread tasks in `store` instead of `auth.json` from now on.
    pub fn set_thread_task_store(&self, store: Arc<dyn ThreadTaskStore>) {
        write(&self.store, Some(store));
    }

    fn thread_task_store(&self) -> Option<Arc<dyn ThreadTaskStore>> {
        read(&self.store)
    }

    /// The task of `thread_id` under the current runtime, if registered.
    pub fn thread_task(&self, thread_id: &str) -> Option<String> {
        let runtime = self.runtime_id()?;
        self.cached_task(&runtime, thread_id)
    }

    fn cached_task(&self, runtime: &str, thread_id: &str) -> Option<String> {
        let tasks = self.thread_tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks
            .get(thread_id)
            .filter(|c| c.runtime == runtime)
            .map(|c| c.task.clone())
    }

    fn cache_task(&self, runtime: &str, thread_id: &str, task: &str) {
        self.thread_tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                thread_id.to_owned(),
                CachedTask {
                    runtime: runtime.to_owned(),
                    task: task.to_owned(),
                },
            );
    }

    /// A signed assertion for `thread_id`'s task, or the background task when there is no
    /// thread (or its task is not registered yet); `None` when nothing is registered or the host
    /// is not supported.
    pub(crate) fn assertion(&self, thread_id: Option<&str>) -> Option<String> {
        if !self.supported || self.signing_paused() {
            return None;
        }
        let record = self.record()?;
        let task = thread_id
            .and_then(|t| self.cached_task(&record.agent_runtime_id, t))
            .or(record.background_task_id)?;
        Some(mint_assertion(
            &self.key(),
            &record.agent_runtime_id,
            &task,
            SystemTime::now(),
        ))
    }

    /// Whether requests use bearer for now because tasks were refused twice in a row.
    fn signing_paused(&self) -> bool {
        let recovery = self.task_recovery.lock().unwrap_or_else(|p| p.into_inner());
        recovery.bearer_until.is_some_and(|t| Instant::now() < t)
    }

    /// The thread whose task (of `runtime`) is `task`, if any.
    fn thread_of_task(&self, runtime: &str, task: &str) -> Option<String> {
        let tasks = self.thread_tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks
            .iter()
            .find(|(_, c)| c.runtime == runtime && c.task == task)
            .map(|(thread, _)| thread.clone())
    }

    /// The backend answered `agent_task_unknown` to `refused`: the task it named (a thread's or
    /// the background one) is dropped and a new task of the same runtime registered (and
    /// persisted). A second such refusal within [`REREGISTER_COOLDOWN`] registers nothing:
    /// requests use bearer until the cooldown has passed. True when the request may be sent once
    /// more with fresh headers (a new task, another caller's replacement, or bearer).
    pub(crate) async fn task_refused(
        &self,
        bearer: &[(HeaderName, HeaderValue)],
        refused: &AgentAssertion,
    ) -> bool {
        if !self.supported {
            return false;
        }
        let Some(record) = self.record() else {
            return false;
        };
        // The runtime was replaced since: the request is signed by the new one.
        if record.agent_runtime_id != refused.agent_runtime_id {
            return true;
        }
        let runtime = record.agent_runtime_id;
        let stale = refused.task_id.as_str();
        let thread = if record.background_task_id.as_deref() == Some(stale) {
            None
        } else {
            match self.thread_of_task(&runtime, stale) {
                Some(thread) => Some(thread),
                // Another caller replaced it already: sign again.
                None => return true,
            }
        };
        let which = thread.as_deref().unwrap_or("(background)");
        let again = {
            let mut recovery = self.task_recovery.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let again = recovery
                .last
                .is_some_and(|t| now.duration_since(t) < REREGISTER_COOLDOWN);
            if again {
                recovery.bearer_until = Some(now + REREGISTER_COOLDOWN);
            } else {
                recovery.last = Some(now);
            }
            again
        };
        if again {
            tracing::warn!(
                agent_runtime_id = %runtime,
                task_id = stale,
                thread_id = which,
                "agent task refused again soon after registering a new one; using bearer auth and not registering again for now"
            );
            return true;
        }
        tracing::warn!(
            agent_runtime_id = %runtime,
            task_id = stale,
            thread_id = which,
            "agent task unknown to the backend; registering a new one"
        );
        match thread {
            None => {
                if let Err(e) = self.replace_background_task(bearer, &runtime, stale).await {
                    tracing::warn!(error = %e, "agent background task not registered again; using bearer auth");
                }
            }
            Some(thread) => {
                self.replace_thread_task(bearer, &runtime, &thread, stale)
                    .await
            }
        }
        true
    }

    /// Drops the background task `stale` of `runtime` (unless already replaced) and registers a
    /// new one.
    async fn replace_background_task(
        &self,
        bearer: &[(HeaderName, HeaderValue)],
        runtime: &str,
        stale: &str,
    ) -> Result<(), AuthError> {
        {
            let _guard = self.lock_registration().await?;
            if let Some(record) = self.record().filter(|r| {
                r.agent_runtime_id == runtime && r.background_task_id.as_deref() == Some(stale)
            }) {
                self.set_record(Some(AgentIdentityRecord {
                    background_task_id: None,
                    ..record
                }))?;
            }
        }
        self.ensure_background(bearer).await
    }

    /// Drops `thread_id`'s task `stale` of `runtime` (unless already replaced) and registers and
    /// persists a new one; on failure the thread uses the background task.
    async fn replace_thread_task(
        &self,
        bearer: &[(HeaderName, HeaderValue)],
        runtime: &str,
        thread_id: &str,
        stale: &str,
    ) {
        let lock = self.thread_lock(thread_id);
        let Ok(_guard) = tokio::time::timeout(REGISTER_LOCK_DEADLINE, lock.lock()).await else {
            tracing::warn!(thread_id, "agent task registration is stuck");
            return;
        };
        if self.cached_task(runtime, thread_id).as_deref() != Some(stale) {
            return;
        }
        self.thread_tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(thread_id);
        // The store still holds the refused task: register, do not load.
        let ok = self.register_thread_task(bearer, thread_id, false).await;
        self.note_thread_task(thread_id, ok);
    }

    /// The backend refused `refused` for its timestamp (`code`: expired or dated in the future),
    /// i.e. the clocks disagree; nothing is registered. Logged once; waits until a new second so
    /// the next header carries a new timestamp. True when the request may be signed again.
    pub(crate) async fn clock_skew_refused(&self, refused: &AgentAssertion, code: &str) -> bool {
        if !self.supported || self.record().is_none() {
            return false;
        }
        if !self.skew_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                code,
                refused_timestamp = %refused.timestamp,
                local_time = %rfc3339_seconds(SystemTime::now()),
                "the backend refused an agent assertion's timestamp (clock skew?); signing again with a new timestamp"
            );
        }
        let now = SystemTime::now();
        if rfc3339_seconds(now) == refused.timestamp {
            let into = now
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let rest = 1_000_000_000u32.saturating_sub(into);
            tokio::time::sleep(Duration::from_nanos(u64::from(rest)) + Duration::from_millis(5))
                .await;
        }
        true
    }

    pub(crate) fn note_fallback(&self) {
        if !self.fallback_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                authapi = %self.config.authapi_base_url,
                "agent identity is not registered; backend requests use bearer auth"
            );
        }
    }

    async fn lock_registration(&self) -> Result<tokio::sync::MutexGuard<'_, ()>, AuthError> {
        tokio::time::timeout(REGISTER_LOCK_DEADLINE, self.register_lock.lock())
            .await
            .map_err(|_| AuthError::AgentIdentity("registration is stuck".into()))
    }

    /// Registers the runtime and the background task if they are not yet.
    pub(crate) async fn prepare(&self, bearer: &[(HeaderName, HeaderValue)]) {
        if !self.supported {
            return;
        }
        if let Err(e) = self.ensure_background(bearer).await {
            tracing::warn!(error = %e, "agent identity registration failed; using bearer auth");
            self.fallback_logged.store(true, Ordering::Relaxed);
        }
    }

    async fn ensure_background(
        &self,
        bearer: &[(HeaderName, HeaderValue)],
    ) -> Result<(), AuthError> {
        let _guard = self.lock_registration().await?;
        match self.ensure_background_locked(bearer).await {
            // The stored runtime was revoked or forgotten while Tally was not running.
            Err(Failure::RuntimeGone { code }) => {
                let stale = self.runtime_id().unwrap_or_default();
                self.drop_runtime(&stale, &code)?;
                self.ensure_background_locked(bearer)
                    .await
                    .map_err(Failure::into_error)
            }
            other => other.map_err(Failure::into_error),
        }
    }

    /// Registers what is missing; the caller holds the registration lock.
    async fn ensure_background_locked(
        &self,
        bearer: &[(HeaderName, HeaderValue)],
    ) -> Result<(), Failure> {
        let record = match self.record() {
            Some(r) => r,
            None => {
                self.check_not_paused()?;
                // The login the bearer speaks for, which must still be the current one (the
                // bearer was taken before this waited for the registration lock): the record
                // then names the login that really registered it.
                let principal = crate::principal::principal_of_headers(bearer)
                    .filter(|p| self.principal().as_ref() == Some(p))
                    .ok_or_else(|| {
                        AuthError::AgentIdentity(
                            "no login, or the login changed since; not registering".into(),
                        )
                    })?;
                let id = self
                    .registrar
                    .register_runtime(&self.config, bearer, &self.key())
                    .await?;
                let record = AgentIdentityRecord {
                    agent_runtime_id: id,
                    authapi_base_url: self.config.authapi_base_url.clone(),
                    background_task_id: None,
                    thread_tasks: Vec::new(),
                    principal: Some(principal),
                };
                self.set_record(Some(record.clone()))?;
                tracing::info!(agent_runtime_id = %record.agent_runtime_id, "agent runtime registered");
                record
            }
        };
        if record.background_task_id.is_none() {
            let task = self
                .registrar
                .register_task(&self.config, &record.agent_runtime_id, &self.key())
                .await?;
            self.set_record(Some(AgentIdentityRecord {
                background_task_id: Some(task),
                ..record
            }))?;
        }
        Ok(())
    }

    /// Refuses a registration while re-registration is paused (see [`REREGISTER_COOLDOWN`]).
    fn check_not_paused(&self) -> Result<(), AuthError> {
        let mut recovery = self.recovery.lock().unwrap_or_else(|p| p.into_inner());
        if !recovery.paused {
            return Ok(());
        }
        let cooled = recovery
            .last
            .is_none_or(|t| t.elapsed() >= REREGISTER_COOLDOWN);
        if cooled {
            recovery.paused = false;
            return Ok(());
        }
        Err(AuthError::AgentIdentity(
            "the backend refused a newly registered runtime; registering again is paused".into(),
        ))
    }

    /// Drops the runtime `stale` after the backend said `code` (revoked or unknown): forgets it
    /// and its tasks (threads register new ones on their next request), and after a revocation
    /// also the key (it may be the stolen one). `Err` when this happens again within the
    /// cooldown: the caller must not register again yet. The caller holds the registration lock.
    fn drop_runtime(&self, stale: &str, code: &str) -> Result<(), AuthError> {
        // Another caller already replaced it.
        if self.runtime_id().as_deref() != Some(stale) {
            return Ok(());
        }
        // The key first: if it cannot be replaced, the revoked runtime stays (and is refused)
        // rather than a possibly stolen key being registered again.
        if code == "agent_runtime_revoked" {
            write(&self.key, create_key(&self.home)?);
        }
        // Its thread tasks are never used again (they name `stale`); the threads get new tasks
        // of the next runtime on their next request (see `wants_thread_task`).
        self.set_record(None)?;
        let mut recovery = self.recovery.lock().unwrap_or_else(|p| p.into_inner());
        let again = recovery
            .last
            .is_some_and(|t| t.elapsed() < REREGISTER_COOLDOWN);
        if again {
            recovery.paused = true;
            tracing::warn!(
                agent_runtime_id = stale,
                code,
                "agent runtime refused again soon after registering anew; using bearer auth and not registering again for now"
            );
            return Err(AuthError::AgentIdentity(format!(
                "the backend refused the runtime again ({code}); registering again is paused"
            )));
        }
        recovery.last = Some(Instant::now());
        recovery.paused = false;
        tracing::warn!(
            agent_runtime_id = stale,
            code,
            "agent runtime refused by the backend; registering a new one"
        );
        Ok(())
    }

    /// Drops `stale` (bounded, see [`AgentIdentity::drop_runtime`]) and registers a new runtime
    /// and background task.
    async fn recover(
        &self,
        bearer: &[(HeaderName, HeaderValue)],
        stale: &str,
        code: &str,
    ) -> Result<(), AuthError> {
        let _guard = self.lock_registration().await?;
        self.drop_runtime(stale, code)?;
        self.ensure_background_locked(bearer)
            .await
            .map_err(Failure::into_error)
    }

    /// A backend refused an assertion of the runtime `refused` (the current one when `None`)
    /// with the 401 reason `code`: a revoked or unknown runtime is dropped and registered again
    /// (once; see [`REREGISTER_COOLDOWN`]). True when a runtime other than `refused` is
    /// registered afterwards (also when another caller already replaced it), so the request can
    /// be signed again.
    pub(crate) async fn assertion_refused(
        &self,
        bearer: &[(HeaderName, HeaderValue)],
        code: &str,
        refused: Option<&str>,
    ) -> bool {
        if !self.supported || !is_runtime_gone(code) {
            return false;
        }
        let Some(stale) = refused.map(str::to_owned).or_else(|| self.runtime_id()) else {
            return false;
        };
        // `recover` leaves a runtime that is no longer `stale` alone.
        match self.recover(bearer, &stale, code).await {
            Ok(()) => self.runtime_id().is_some_and(|id| id != stale),
            Err(e) => {
                tracing::warn!(error = %e, "agent identity not registered again; using bearer auth");
                false
            }
        }
    }

    /// Whether a request of `thread_id` should first register the thread's task: the thread was
    /// prewarmed (it wants one), has none under the current runtime (none yet, or its task
    /// belonged to a runtime that was dropped since), and its last attempt did not fail within
    /// [`THREAD_TASK_RETRY_COOLDOWN`].
    pub(crate) fn wants_thread_task(&self, thread_id: &str) -> bool {
        if !self.supported || self.thread_task(thread_id).is_some() {
            return false;
        }
        let wanted = self.wanted.lock().unwrap_or_else(|p| p.into_inner());
        wanted.get(thread_id).is_some_and(|w| {
            w.failed_at
                .is_none_or(|t| t.elapsed() >= THREAD_TASK_RETRY_COOLDOWN)
        })
    }

    /// The single-flight lock of `thread_id`'s registration; marks the thread as wanting a task.
    fn thread_lock(&self, thread_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut wanted = self.wanted.lock().unwrap_or_else(|p| p.into_inner());
        wanted.entry(thread_id.to_owned()).or_default().lock.clone()
    }

    fn note_thread_task(&self, thread_id: &str, ok: bool) {
        let mut wanted = self.wanted.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = wanted.get_mut(thread_id) {
            w.failed_at = (!ok).then(Instant::now);
        }
    }

    /// Registers `thread_id`'s task under the current runtime if it has none (once, however many
    /// callers ask at the same time); failures leave the thread on the background task.
    pub(crate) async fn ensure_thread_task(
        &self,
        bearer: &[(HeaderName, HeaderValue)],
        thread_id: &str,
    ) {
        if !self.supported {
            return;
        }
        let lock = self.thread_lock(thread_id);
        let Ok(_guard) = tokio::time::timeout(REGISTER_LOCK_DEADLINE, lock.lock()).await else {
            tracing::warn!(thread_id, "agent task registration is stuck");
            return;
        };
        // Registered by the caller this one waited for.
        if self.thread_task(thread_id).is_some() {
            return;
        }
        let ok = self.register_thread_task(bearer, thread_id, true).await;
        self.note_thread_task(thread_id, ok);
    }

    /// Finds (when `reuse_stored`) or registers `thread_id`'s task; the caller holds the thread's
    /// lock. True when the thread has a task of the current runtime afterwards.
    async fn register_thread_task(
        &self,
        bearer: &[(HeaderName, HeaderValue)],
        thread_id: &str,
        reuse_stored: bool,
    ) -> bool {
        self.prepare(bearer).await;
        let Some(runtime) = self.runtime_id() else {
            return false;
        };
        // A resumed thread keeps the task its store kept (if the same runtime registered it).
        if let Some(task) = self
            .thread_task_store()
            .filter(|_| reuse_stored)
            .and_then(|s| s.load(&runtime, thread_id))
        {
            self.cache_task(&runtime, thread_id, &task);
            return true;
        }
        let registered = match self
            .registrar
            .register_task(&self.config, &runtime, &self.key())
            .await
        {
            Ok(task) => Ok((runtime, task)),
            // Revoked or forgotten since it was registered: a new runtime, then the task.
            Err(Failure::RuntimeGone { code }) => {
                match self.recover(bearer, &runtime, &code).await {
                    Ok(()) => match self.runtime_id() {
                        Some(new) => self
                            .registrar
                            .register_task(&self.config, &new, &self.key())
                            .await
                            .map(|task| (new, task))
                            .map_err(Failure::into_error),
                        None => Err(AuthError::AgentIdentity("no runtime after recovery".into())),
                    },
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e.into_error()),
        };
        match registered {
            Ok((runtime, task)) => {
                self.cache_task(&runtime, thread_id, &task);
                if let Err(e) = self.persist_thread_task(&runtime, thread_id, task).await {
                    tracing::warn!(thread_id, error = %e, "agent task not saved; it is registered again after a restart");
                }
                true
            }
            Err(e) => {
                tracing::warn!(thread_id, error = %e, "agent task registration failed");
                false
            }
        }
    }

    async fn persist_thread_task(
        &self,
        runtime: &str,
        thread_id: &str,
        task_id: String,
    ) -> Result<(), AuthError> {
        if let Some(store) = self.thread_task_store() {
            return store.save(runtime, thread_id, &task_id);
        }
        let _guard = self.lock_registration().await?;
        let Some(mut record) = self.record().filter(|r| r.agent_runtime_id == runtime) else {
            return Ok(());
        };
        record.thread_tasks.retain(|t| t.thread_id != thread_id);
        record.thread_tasks.push(ThreadTask {
            thread_id: thread_id.to_owned(),
            task_id,
        });
        let excess = record
            .thread_tasks
            .len()
            .saturating_sub(MAX_PERSISTED_THREAD_TASKS);
        record.thread_tasks.drain(..excess);
        self.set_record(Some(record))
    }
}

#[cfg(test)]
#[path = "agent_identity_tests.rs"]
mod tests;

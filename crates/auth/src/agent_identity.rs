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
use std::sync::{Mutex, RwLock};
use std::time::{Duration, SystemTime};

use crate::auth_json::{self, AgentIdentityRecord, AuthDotJson, ThreadTask};
use crate::error::AuthError;

/// File holding the private key (PKCS#8 DER, mode 0600) under the home.
pub const KEY_FILE: &str = "agent_identity_key.der";

/// Thread tasks kept in `auth.json` at most (the oldest are forgotten first).
const MAX_PERSISTED_THREAD_TASKS: usize = 256;

/// Deadline on one registration request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Backoff between registration attempts on 429/5xx; its length bounds the attempts.
const RETRY_BACKOFF: [Duration; 3] = [
    Duration::from_millis(250),
    Duration::from_millis(1000),
    Duration::from_millis(3000),
];

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
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
            let der = key.to_pkcs8_der().map_err(|_| AuthError::Corrupt {
                path: path.clone(),
                message: "cannot encode the new key".into(),
            })?;
            auth_json::write_private(&path, der.as_bytes())?;
            Ok(key)
        }
        Err(e) => Err(AuthError::io(&path, e)),
    }
}

#[derive(Deserialize)]
struct RegisterResponse {
    agent_runtime_id: String,
}

#[derive(Deserialize)]
struct TaskRegisterResponse {
    task_id: Option<String>,
    encrypted_task_id: Option<String>,
}

/// A registered (or registering) agent runtime and its tasks.
pub struct AgentIdentity {
    home: PathBuf,
    config: AgentIdentityConfig,
    key: SigningKey,
    http: reqwest::Client,
    record: RwLock<Option<AgentIdentityRecord>>,
    thread_tasks: Mutex<HashMap<String, String>>,
    // Single flight for registrations, so concurrent threads do not register twice.
    register_lock: tokio::sync::Mutex<()>,
    fallback_logged: AtomicBool,
}

impl std::fmt::Debug for AgentIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentIdentity")
            .field("authapi_base_url", &self.config.authapi_base_url)
            .field("runtime", &self.runtime_id())
            .finish_non_exhaustive()
    }
}

impl AgentIdentity {
    pub(crate) fn new(
        home: &Path,
        config: AgentIdentityConfig,
        stored: Option<&AuthDotJson>,
    ) -> Result<Self, AuthError> {
        let key = load_or_create_key(home)?;
        // A runtime registered with another backend is not known to this one.
        let record = stored
            .and_then(|s| s.agent_identity.clone())
            .filter(|r| r.authapi_base_url == config.authapi_base_url);
        let thread_tasks = record
            .iter()
            .flat_map(|r| r.thread_tasks.iter())
            .map(|t| (t.thread_id.clone(), t.task_id.clone()))
            .collect();
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Ok(Self {
            home: home.to_path_buf(),
            config,
            key,
            http,
            record: RwLock::new(record),
            thread_tasks: Mutex::new(thread_tasks),
            register_lock: tokio::sync::Mutex::new(()),
            fallback_logged: AtomicBool::new(false),
        })
    }

    /// The public key as registered.
    pub fn public_key(&self) -> String {
        ssh_public_key(&self.key.verifying_key().to_bytes())
    }

    fn record(&self) -> Option<AgentIdentityRecord> {
        match self.record.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_record(&self, record: AgentIdentityRecord) -> Result<(), AuthError> {
        let mut file = auth_json::read(&self.home)?.unwrap_or_default();
        file.agent_identity = Some(record.clone());
        auth_json::write(&self.home, &file)?;
        match self.record.write() {
            Ok(mut r) => *r = Some(record),
            Err(poisoned) => *poisoned.into_inner() = Some(record),
        }
        Ok(())
    }

    /// The registered runtime id, if any.
    pub fn runtime_id(&self) -> Option<String> {
        self.record().map(|r| r.agent_runtime_id)
    }

    /// The task of `thread_id`, if registered.
    pub fn thread_task(&self, thread_id: &str) -> Option<String> {
        match self.thread_tasks.lock() {
            Ok(t) => t.get(thread_id).cloned(),
            Err(poisoned) => poisoned.into_inner().get(thread_id).cloned(),
        }
    }

    /// A signed assertion for `thread_id`'s task, or the background task when there is no
    /// thread (or its task is not registered yet); `None` when nothing is registered.
    pub(crate) fn assertion(&self, thread_id: Option<&str>) -> Option<String> {
        let record = self.record()?;
        let task = thread_id
            .and_then(|t| self.thread_task(t))
            .or(record.background_task_id)?;
        Some(mint_assertion(
            &self.key,
            &record.agent_runtime_id,
            &task,
            SystemTime::now(),
        ))
    }

    pub(crate) fn note_fallback(&self) {
        if !self.fallback_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                authapi = %self.config.authapi_base_url,
                "agent identity is not registered; backend requests use bearer auth"
            );
        }
    }

    /// Registers the runtime and the background task if they are not yet.
    pub(crate) async fn prepare(&self, bearer: &[(HeaderName, HeaderValue)]) {
        if let Err(e) = self.ensure_background(bearer).await {
            tracing::warn!(error = %e, "agent identity registration failed; using bearer auth");
            self.fallback_logged.store(true, Ordering::Relaxed);
        }
    }

    async fn ensure_background(
        &self,
        bearer: &[(HeaderName, HeaderValue)],
    ) -> Result<(), AuthError> {
        let _guard = tokio::time::timeout(REQUEST_TIMEOUT * 4, self.register_lock.lock())
            .await
            .map_err(|_| AuthError::AgentIdentity("registration is stuck".into()))?;
        let record = match self.record() {
            Some(r) => r,
            None => {
                let id = self.register_runtime(bearer).await?;
                let record = AgentIdentityRecord {
                    agent_runtime_id: id,
                    authapi_base_url: self.config.authapi_base_url.clone(),
                    background_task_id: None,
                    thread_tasks: Vec::new(),
                };
                self.set_record(record.clone())?;
                tracing::info!(agent_runtime_id = %record.agent_runtime_id, "agent runtime registered");
                record
            }
        };
        if record.background_task_id.is_none() {
            let task = self.register_task(&record.agent_runtime_id).await?;
            self.set_record(AgentIdentityRecord {
                background_task_id: Some(task),
                ..record
            })?;
        }
        Ok(())
    }

    /// Registers `thread_id`'s task once; failures leave the thread on the background task.
    pub(crate) async fn ensure_thread_task(
        &self,
        bearer: &[(HeaderName, HeaderValue)],
        thread_id: &str,
    ) {
        if self.thread_task(thread_id).is_some() {
            return;
        }
        self.prepare(bearer).await;
        let Some(runtime) = self.runtime_id() else {
            return;
        };
        match self.register_task(&runtime).await {
            Ok(task) => {
                self.thread_tasks
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(thread_id.to_owned())
                    .or_insert(task.clone());
                if let Err(e) = self.persist_thread_task(thread_id, task).await {
                    tracing::warn!(thread_id, error = %e, "agent task not saved; it is registered again after a restart");
                }
            }
            Err(e) => tracing::warn!(thread_id, error = %e, "agent task registration failed"),
        }
    }

    async fn persist_thread_task(&self, thread_id: &str, task_id: String) -> Result<(), AuthError> {
        let _guard = tokio::time::timeout(REQUEST_TIMEOUT * 4, self.register_lock.lock())
            .await
            .map_err(|_| AuthError::AgentIdentity("registration is stuck".into()))?;
        let Some(mut record) = self.record() else {
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
        self.set_record(record)
    }

    async fn register_runtime(
        &self,
        bearer: &[(HeaderName, HeaderValue)],
    ) -> Result<String, AuthError> {
        if bearer.is_empty() {
            return Err(AuthError::AgentIdentity(
                "registration needs a logged-in account".into(),
            ));
        }
        let body = serde_json::json!({
            "abom": {
                "agent_version": self.config.agent_version,
                "agent_harness_id": self.config.agent_harness_id,
                "running_location": self.config.running_location,
            },
            "agent_public_key": self.public_key(),
            "capabilities": ["responsesapi"],
            "ttl": null,
        });
        let url = format!("{}/v1/agent/register", self.config.authapi_base_url);
        let response: RegisterResponse = self.post_with_retry(&url, bearer, &body).await?;
        Ok(response.agent_runtime_id)
    }

    async fn register_task(&self, agent_runtime_id: &str) -> Result<String, AuthError> {
        let timestamp = rfc3339_seconds(SystemTime::now());
        let signature = self
            .key
            .sign(task_registration_message(agent_runtime_id, &timestamp).as_bytes());
        let body = serde_json::json!({
            "timestamp": timestamp,
            "signature": base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
        });
        let url = format!(
            "{}/v1/agent/{agent_runtime_id}/task/register",
            self.config.authapi_base_url
        );
        let response: TaskRegisterResponse = self.post_with_retry(&url, &[], &body).await?;
        match (response.task_id, response.encrypted_task_id) {
            (Some(task), _) if !task.is_empty() => Ok(task),
            (_, Some(_)) => Err(AuthError::AgentIdentity(
                "the backend sent an encrypted_task_id, which Tally does not decrypt".into(),
            )),
            _ => Err(AuthError::AgentIdentity(
                "the backend sent no task_id".into(),
            )),
        }
    }

    async fn post_with_retry<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        headers: &[(HeaderName, HeaderValue)],
        body: &serde_json::Value,
    ) -> Result<T, AuthError> {
        let mut attempt = 0;
        loop {
            let mut request = self.http.post(url).json(body);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let retry = match request.send().await {
                Ok(r) if r.status().is_success() => {
                    return r.json().await.map_err(|_| {
                        AuthError::AgentIdentity(format!("{url} sent an unreadable answer"))
                    });
                }
                Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                    format!("{url} answered {}", r.status())
                }
                Ok(r) => {
                    return Err(AuthError::AgentIdentity(format!(
                        "{url} answered {}",
                        r.status()
                    )))
                }
                Err(e) => format!("{url} unreachable: {}", e.without_url()),
            };
            let Some(delay) = RETRY_BACKOFF.get(attempt) else {
                return Err(AuthError::AgentIdentity(retry));
            };
            attempt += 1;
            tokio::time::sleep(*delay).await;
        }
    }
}

#[cfg(test)]
#[path = "agent_identity_tests.rs"]
mod tests;

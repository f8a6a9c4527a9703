//! `auth.json` in Codex's format: read, written atomically, and kept at mode 0600.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::AuthError;

/// File name under the home, as in Codex.
pub const AUTH_FILE: &str = "auth.json";

/// The whole file; unknown keys are kept so a Codex-written file survives a Tally write.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthDotJson {
    /// An API key saved by `login --api-key`.
    #[serde(
        rename = "OPENAI_API_KEY",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub openai_api_key: Option<String>,
    /// ChatGPT tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenData>,
    /// When the tokens were last refreshed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refresh: Option<String>,
    /// The registered agent identity, when the feature is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_identity: Option<AgentIdentityRecord>,
    /// Keys Tally does not use, written back unchanged.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// `tokens` in `auth.json`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenData {
    /// The OpenID id token (a JWT carrying email and plan).
    #[serde(default)]
    pub id_token: String,
    /// The bearer token sent to the backend.
    pub access_token: String,
    /// The token used to get a new access token.
    #[serde(default)]
    pub refresh_token: String,
    /// The ChatGPT account id, sent as `ChatGPT-Account-ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// `agent_identity` in `auth.json`: the registered runtime and its background task (the private key
/// lives in its own PKCS#8 file).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentIdentityRecord {
    /// The runtime id the backend returned at registration.
    pub agent_runtime_id: String,
    /// Base URL the runtime was registered with; a different base means registering again.
    #[serde(default)]
    pub authapi_base_url: String,
    /// The one background/control-plane task, for requests with no thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_task_id: Option<String>,
    /// Tasks of recent threads, oldest first, so a resumed thread keeps its task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thread_tasks: Vec<ThreadTask>,
    /// The login it was registered under (`chatgpt:<account id>` or `api_key:<digest prefix>`):
    /// it signs for that login only, so a logout or another account's login stops it. Records
    /// from before this field sign for no one and are registered again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

/// A thread's registered agent task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThreadTask {
    /// The thread.
    pub thread_id: String,
    /// Its task.
    pub task_id: String,
}

// Secrets never reach Debug output: only which parts are present.
impl std::fmt::Debug for AuthDotJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthDotJson")
            .field(
                "openai_api_key",
                &self.openai_api_key.as_ref().map(|_| "<redacted>"),
            )
            .field("tokens", &self.tokens)
            .field("last_refresh", &self.last_refresh)
            .field("agent_identity", &self.agent_identity)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for TokenData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenData")
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AgentIdentityRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentIdentityRecord")
            .field("agent_runtime_id", &self.agent_runtime_id)
            .field("authapi_base_url", &self.authapi_base_url)
            .field("has_background_task", &self.background_task_id.is_some())
            .field("thread_tasks", &self.thread_tasks.len())
            .finish()
    }
}

impl AuthDotJson {
    /// True when the file holds no credential at all.
    pub fn is_empty(&self) -> bool {
        self.openai_api_key.is_none() && self.tokens.is_none()
    }
}

/// Path of `auth.json` under `home`.
pub fn auth_file(home: &Path) -> PathBuf {
    home.join(AUTH_FILE)
}

/// Reads `auth.json`; `Ok(None)` when absent.
pub fn read(home: &Path) -> Result<Option<AuthDotJson>, AuthError> {
    let path = auth_file(home);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuthError::io(&path, e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| AuthError::Corrupt {
            path: path.clone(),
            message: where_unreadable(&e),
        })
}

/// What is wrong and where, never the text there: serde_json's own message quotes the value of a
/// field of the wrong type, which in this file is a token or a key.
fn where_unreadable(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Data => "a field has the wrong type or is missing",
        serde_json::error::Category::Eof => "the file ends early",
        serde_json::error::Category::Syntax | serde_json::error::Category::Io => "not valid JSON",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

/// Writes `auth.json` atomically (temp file in the same directory, then rename), mode 0600.
pub fn write(home: &Path, auth: &AuthDotJson) -> Result<(), AuthError> {
    let path = auth_file(home);
    let json = serde_json::to_vec_pretty(auth).map_err(|e| AuthError::Corrupt {
        path: path.clone(),
        message: e.to_string(),
    })?;
    write_private(&path, &json)
}

/// Removes `auth.json`; true when there was one.
pub fn delete(home: &Path) -> Result<bool, AuthError> {
    let path = auth_file(home);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(AuthError::io(&path, e)),
    }
}

/// Writes `bytes` to `path` atomically with owner-only permissions.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AuthError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| AuthError::io(dir, e))?;
    // tempfile creates the file 0600 on Unix, so the secret is never readable by others, even
    // before the rename.
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| AuthError::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| AuthError::io(path, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| AuthError::io(path, e))?;
    set_owner_only(tmp.path())?;
    tmp.persist(path)
        .map_err(|e| AuthError::io(path, e.error))?;
    Ok(())
}

#[cfg(unix)]
fn set_owner_only(path: &Path) -> Result<(), AuthError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| AuthError::io(path, e))
}

#[cfg(not(unix))]
fn set_owner_only(_path: &Path) -> Result<(), AuthError> {
    Ok(())
}

#[cfg(test)]
#[path = "auth_json_tests.rs"]
mod tests;

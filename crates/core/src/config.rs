//! `config.toml` under the Tally home, read with Codex's keys unchanged.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tally_protocol::types::{ApprovalsReviewer, AskForApproval, SandboxMode};

/// The id of the built-in deterministic offline model provider.
pub const OFFLINE_PROVIDER_ID: &str = "tally-offline";
/// The id of the built-in OpenAI provider.
pub const OPENAI_PROVIDER_ID: &str = "openai";

/// `config.toml` as written; every key optional.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfigToml {
    pub model: Option<String>,
    pub model_provider: Option<String>,
    #[serde(default)]
    pub model_providers: BTreeMap<String, ModelProviderToml>,
    pub model_reasoning_effort: Option<String>,
    /// The model's context window in tokens (Codex's key); clients show how much is left.
    pub model_context_window: Option<std::num::NonZeroU64>,
    pub approval_policy: Option<AskForApproval>,
    /// Who reviews approvals: `user`, or `auto_review` (legacy `guardian_subagent`) for Guardian.
    pub approvals_reviewer: Option<ApprovalsReviewer>,
    pub sandbox_mode: Option<SandboxMode>,
    pub chatgpt_base_url: Option<String>,
    pub analytics: Option<AnalyticsToml>,
    pub guardian: Option<GuardianToml>,
    pub features: Option<FeaturesToml>,
    pub agent_identity: Option<AgentIdentityToml>,
    pub tools: Option<ToolsToml>,
    pub app_server: Option<AppServerToml>,
    /// Codex's MCP servers; Tally runs none (read only to say so).
    #[serde(default)]
    pub mcp_servers: BTreeMap<String, toml::Value>,
}

/// `[app_server]`: how the app-server manages loaded threads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AppServerToml {
    /// Unload a loaded thread after this many milliseconds without subscribers or activity
    /// (default 1,800,000 = 30 min, as in Codex; 0 never unloads).
    pub thread_idle_unload_ms: Option<u64>,
}

/// `[tools]`: optional tools offered to the model (Codex's keys).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ToolsToml {
    /// `[tools.experimental_request_user_input] enabled = true` offers `request_user_input` to
    /// threads of clients that opted into the experimental API.
    pub experimental_request_user_input: Option<ToolToggleToml>,
}

/// A table that switches one tool on or off.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ToolToggleToml {
    pub enabled: Option<bool>,
}

/// `[features]`: switches for behaviour under development.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FeaturesToml {
    /// Sign backend requests with a registered agent identity (`AgentAssertion`).
    pub use_agent_identity: Option<bool>,
}

/// `[agent_identity]`: where agent identities are registered.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AgentIdentityToml {
    /// Base of `/v1/agent/register` (else `{chatgpt_base_url}/api/accounts`).
    pub authapi_base_url: Option<String>,
    /// Hosts besides production and staging ChatGPT where agent identity is used.
    pub allowed_hosts: Option<Vec<String>>,
}

/// `[guardian]`: how automatic approval reviews run.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GuardianToml {
    /// Deadline of one review in milliseconds (Codex: 90,000).
    pub review_timeout_ms: Option<u64>,
}

/// `[model_providers.ID]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ModelProviderToml {
    pub name: Option<String>,
    pub base_url: Option<String>,
    pub wire_api: Option<String>,
    pub env_key: Option<String>,
    /// Codex's key: requests carry the OpenAI login (ChatGPT tokens or the API key) that
    /// `AuthManager` holds. Without it they carry `env_key`'s value only, so a third-party
    /// provider never receives the login.
    pub requires_openai_auth: Option<bool>,
    pub request_max_retries: Option<u32>,
    pub stream_max_retries: Option<u32>,
    pub stream_idle_timeout_ms: Option<u64>,
}

/// `[analytics]`: Codex's `enabled`, plus where Tally sends events.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AnalyticsToml {
    pub enabled: Option<bool>,
    /// Base URL of a Tally collector (events go to `{url}/codex/analytics-events/events`).
    pub collector_url: Option<String>,
    /// Environment variable holding the collector's bearer token.
    pub collector_token_env: Option<String>,
    /// Append events as JSON lines to this file instead (used when `collector_url` is unset).
    pub jsonl_path: Option<PathBuf>,
}

/// Where analytics go, resolved; unset `enabled` means on, as in Codex.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalyticsSettings {
    pub enabled: bool,
    pub collector_url: Option<String>,
    pub collector_token_env: Option<String>,
    pub jsonl_path: Option<PathBuf>,
}

/// Where `[analytics]` sends events when it names a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnalyticsDestination<'a> {
    /// A collector's base URL.
    Collector(&'a str),
    /// A JSON-lines file.
    File(&'a Path),
}

impl std::fmt::Display for AnalyticsDestination<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnalyticsDestination::Collector(url) => f.write_str(url),
            AnalyticsDestination::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl AnalyticsSettings {
    /// The collector when one is named, else the file, else none.
    pub fn destination(&self) -> Option<AnalyticsDestination<'_>> {
        self.collector_url
            .as_deref()
            .map(AnalyticsDestination::Collector)
            .or_else(|| self.jsonl_path.as_deref().map(AnalyticsDestination::File))
    }
}

/// A model provider, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelProviderInfo {
    pub id: String,
    pub name: String,
    pub kind: ProviderKind,
    pub request_max_retries: u32,
    pub stream_max_retries: u32,
    pub stream_idle_timeout: Duration,
}

/// How a provider is reached.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderKind {
    /// The built-in deterministic model; no network.
    Offline,
    /// A Responses API at `base_url` (which includes the version prefix, e.g. `/v1`).
    Responses {
        base_url: String,
        env_key: Option<String>,
        /// Requests carry the OpenAI login held by `AuthManager` (the built-in `openai`
        /// provider, or `requires_openai_auth = true`); else only `env_key`'s value.
        requires_openai_auth: bool,
    },
}

/// The effective configuration of one Tally process.
#[derive(Debug, Clone)]
pub struct Config {
    pub home: PathBuf,
    pub model: String,
    pub model_provider: ModelProviderInfo,
    pub model_providers: BTreeMap<String, ModelProviderInfo>,
    pub model_reasoning_effort: Option<String>,
    /// `model_context_window`: reported with token usage; unknown (null) when not configured.
    pub model_context_window: Option<i64>,
    pub approval_policy: AskForApproval,
    pub approvals_reviewer: ApprovalsReviewer,
    /// Deadline of one Guardian review.
    pub guardian_review_timeout: Duration,
    pub sandbox_mode: SandboxMode,
    pub chatgpt_base_url: String,
    pub analytics_enabled: Option<bool>,
    pub analytics: AnalyticsSettings,
    /// `[features] use_agent_identity`.
    pub use_agent_identity: bool,
    /// Base URL of the agent-identity registration endpoints.
    pub agent_identity_authapi_base_url: String,
    /// `[agent_identity] allowed_hosts`: hosts besides production and staging ChatGPT.
    pub agent_identity_allowed_hosts: Vec<String>,
    /// `[tools.experimental_request_user_input] enabled`: offer `request_user_input` (to
    /// experimental clients only).
    pub request_user_input: bool,
    /// `[app_server] thread_idle_unload_ms`: how long a thread may stay loaded without
    /// subscribers or activity; `None` never unloads.
    pub thread_idle_unload: Option<Duration>,
    /// Problems found while loading, each to be shown as a `configWarning`.
    pub warnings: Vec<ConfigWarning>,
}

/// One config problem, naming the file.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigWarning {
    pub summary: String,
    pub path: PathBuf,
}

/// A config file that cannot be used: names the file, the key and what was expected.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: PathBuf,
    pub message: String,
}

pub const DEFAULT_OPENAI_MODEL: &str = "gpt-5.1-codex";
pub const DEFAULT_OFFLINE_MODEL: &str = "tally-offline-1";
/// Codex unloads a thread after 30 minutes without subscribers or activity.
pub const DEFAULT_THREAD_IDLE_UNLOAD_MS: u64 = 30 * 60 * 1000;
/// Codex's fixed Guardian review deadline.
pub const DEFAULT_GUARDIAN_REVIEW_TIMEOUT_MS: u64 = 90_000;

impl Config {
    /// Loads `<home>/config.toml` (absent file = defaults).
    pub fn load(home: &Path) -> Result<Self, ConfigError> {
        let path = home.join("config.toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(ConfigError {
                    path,
                    message: format!("cannot read: {e}"),
                })
            }
        };
        let toml = parse_config_toml(&path, &text)?;
        if !toml.mcp_servers.is_empty() {
            tracing::warn!(
                file = %path.display(),
                servers = toml.mcp_servers.len(),
                "Tally does not run MCP servers: [mcp_servers] is ignored"
            );
        }
        Self::from_toml(
            home,
            toml,
            &path,
            std::env::var_os("OPENAI_API_KEY").is_some(),
        )
    }

    fn from_toml(
        home: &Path,
        toml: ConfigToml,
        path: &Path,
        has_openai_key: bool,
    ) -> Result<Self, ConfigError> {
        let mut providers = builtin_providers();
        for (id, p) in &toml.model_providers {
            providers.insert(id.clone(), resolve_provider(id, p, path)?);
        }
        let default_provider = if has_openai_key {
            OPENAI_PROVIDER_ID
        } else {
            OFFLINE_PROVIDER_ID
        };
        let provider_id = toml.model_provider.as_deref().unwrap_or(default_provider);
        let model_provider = providers.get(provider_id).cloned().ok_or_else(|| ConfigError {
            path: path.to_path_buf(),
            message: format!(
                "key `model_provider`: unknown provider `{provider_id}` (define [model_providers.{provider_id}])"
            ),
        })?;
        let model = toml.model.clone().unwrap_or_else(|| {
            match model_provider.kind {
                ProviderKind::Offline => DEFAULT_OFFLINE_MODEL,
                ProviderKind::Responses { .. } => DEFAULT_OPENAI_MODEL,
            }
            .to_string()
        });
        let agent_identity_authapi_base_url = agent_identity_authapi_base_url(&toml);
        Ok(Config {
            home: home.to_path_buf(),
            model,
            model_provider,
            model_providers: providers,
            model_reasoning_effort: toml.model_reasoning_effort,
            model_context_window: toml
                .model_context_window
                .map(|w| i64::try_from(w.get()).unwrap_or(i64::MAX)),
            approval_policy: toml.approval_policy.unwrap_or(AskForApproval::ON_REQUEST),
            approvals_reviewer: toml.approvals_reviewer.unwrap_or_default(),
            guardian_review_timeout: Duration::from_millis(
                toml.guardian
                    .as_ref()
                    .and_then(|g| g.review_timeout_ms)
                    .unwrap_or(DEFAULT_GUARDIAN_REVIEW_TIMEOUT_MS),
            ),
            sandbox_mode: toml.sandbox_mode.unwrap_or_default(),
            use_agent_identity: toml
                .features
                .as_ref()
                .and_then(|f| f.use_agent_identity)
                .unwrap_or(false),
            agent_identity_authapi_base_url,
            agent_identity_allowed_hosts: toml
                .agent_identity
                .as_ref()
                .and_then(|a| a.allowed_hosts.clone())
                .unwrap_or_default(),
            chatgpt_base_url: toml
                .chatgpt_base_url
                .unwrap_or_else(|| "https://chatgpt.com/backend-api".to_string()),
            analytics_enabled: toml.analytics.as_ref().and_then(|a| a.enabled),
            analytics: resolve_analytics(home, toml.analytics.unwrap_or_default()),
            request_user_input: toml
                .tools
                .as_ref()
                .and_then(|t| t.experimental_request_user_input.as_ref())
                .and_then(|t| t.enabled)
                .unwrap_or(false),
            thread_idle_unload: match toml
                .app_server
                .as_ref()
                .and_then(|a| a.thread_idle_unload_ms)
                .unwrap_or(DEFAULT_THREAD_IDLE_UNLOAD_MS)
            {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            },
            warnings: Vec::new(),
        })
    }

    /// Directory of live rollouts.
    pub fn sessions_dir(&self) -> PathBuf {
        self.home.join("sessions")
    }

    /// Directory of archived rollouts.
    pub fn archived_sessions_dir(&self) -> PathBuf {
        self.home.join("archived_sessions")
    }

    /// Looks up a provider by id.
    pub fn provider(&self, id: &str) -> Option<&ModelProviderInfo> {
        self.model_providers.get(id)
    }
}

/// The environment (Codex's variable) wins over config, as in Codex; trailing `/` is trimmed.
fn agent_identity_authapi_base_url(toml: &ConfigToml) -> String {
    let from_env = std::env::var("CODEX_AGENT_IDENTITY_AUTHAPI_BASE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let from_config = toml
        .agent_identity
        .as_ref()
        .and_then(|a| a.authapi_base_url.clone());
    let chatgpt = toml
        .chatgpt_base_url
        .as_deref()
        .unwrap_or("https://chatgpt.com/backend-api");
    from_env
        .or(from_config)
        .unwrap_or_else(|| format!("{}/api/accounts", chatgpt.trim_end_matches('/')))
        .trim_end_matches('/')
        .to_string()
}

/// Parses config text, logging unknown keys at debug level and naming the bad key on type errors.
pub fn parse_config_toml(path: &Path, text: &str) -> Result<ConfigToml, ConfigError> {
    let de = toml::Deserializer::parse(text).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        message: e.to_string().trim().to_string(),
    })?;
    serde_ignored::deserialize(de, |ignored| {
        tracing::debug!(file = %path.display(), key = %ignored, "ignoring unknown config key");
    })
    .map_err(|e: toml::de::Error| ConfigError {
        path: path.to_path_buf(),
        message: e.to_string().trim().to_string(),
    })
}

fn resolve_analytics(home: &Path, a: AnalyticsToml) -> AnalyticsSettings {
    AnalyticsSettings {
        enabled: a.enabled.unwrap_or(true),
        collector_url: a.collector_url.map(|u| u.trim_end_matches('/').to_string()),
        collector_token_env: a.collector_token_env,
        // A relative path is relative to the home, like every other piece of state.
        jsonl_path: a
            .jsonl_path
            .map(|p| if p.is_absolute() { p } else { home.join(p) }),
    }
}

fn builtin_providers() -> BTreeMap<String, ModelProviderInfo> {
    let mut map = BTreeMap::new();
    map.insert(
        OFFLINE_PROVIDER_ID.to_string(),
        ModelProviderInfo {
            id: OFFLINE_PROVIDER_ID.into(),
            name: "Tally offline model".into(),
            kind: ProviderKind::Offline,
            request_max_retries: 0,
            stream_max_retries: 0,
            stream_idle_timeout: Duration::from_secs(60),
        },
    );
    map.insert(
        OPENAI_PROVIDER_ID.to_string(),
        ModelProviderInfo {
            id: OPENAI_PROVIDER_ID.into(),
            name: "OpenAI".into(),
            kind: ProviderKind::Responses {
                base_url: std::env::var("OPENAI_BASE_URL")
                    .unwrap_or_else(|_| "https://api.openai.com/v1".into()),
                env_key: Some("OPENAI_API_KEY".into()),
                requires_openai_auth: true,
            },
            request_max_retries: 4,
            stream_max_retries: 5,
            stream_idle_timeout: Duration::from_secs(300),
        },
    );
    map
}

fn resolve_provider(
    id: &str,
    p: &ModelProviderToml,
    path: &Path,
) -> Result<ModelProviderInfo, ConfigError> {
    let err = |message: String| ConfigError {
        path: path.to_path_buf(),
        message,
    };
    if let Some(wire) = p.wire_api.as_deref() {
        if wire != "responses" {
            return Err(err(format!(
                "key `model_providers.{id}.wire_api`: expected \"responses\", found {wire:?}"
            )));
        }
    }
    let kind = if id == OFFLINE_PROVIDER_ID {
        ProviderKind::Offline
    } else {
        let base_url = p.base_url.clone().ok_or_else(|| {
            err(format!(
                "key `model_providers.{id}.base_url`: missing (a URL such as http://host/v1)"
            ))
        })?;
        ProviderKind::Responses {
            base_url: base_url.trim_end_matches('/').to_string(),
            env_key: p.env_key.clone(),
            requires_openai_auth: p.requires_openai_auth.unwrap_or(false),
        }
    };
    Ok(ModelProviderInfo {
        id: id.to_string(),
        name: p.name.clone().unwrap_or_else(|| id.to_string()),
        kind,
        request_max_retries: p.request_max_retries.unwrap_or(4).min(100),
        stream_max_retries: p.stream_max_retries.unwrap_or(5).min(100),
        stream_idle_timeout: Duration::from_millis(p.stream_idle_timeout_ms.unwrap_or(300_000)),
    })
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;

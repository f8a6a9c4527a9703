//! `AuthManager`: the single owner of credentials and of the per-request authorization decision.

use crate::principal::principal_of_headers;
use http::{HeaderName, HeaderValue};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::agent_identity::{AgentIdentity, AgentIdentityConfig};
use crate::auth_json::{self, AuthDotJson, TokenData};
use crate::error::AuthError;
use crate::refresh::{OAuthRefresher, RefreshedTokens, TokenRefresher};
use crate::token::parse_claims;

/// Header carrying the ChatGPT account id next to the credential.
pub const ACCOUNT_ID_HEADER: &str = "chatgpt-account-id";

/// Tokens are refreshed this long before they expire.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Deadline on one refresh, whoever performs it.
pub const REFRESH_DEADLINE: Duration = Duration::from_secs(30);

/// How long a request waits for the agent-identity work it started (its thread's task, a new
/// runtime after a refusal); the work goes on in the background past it, so a caller that gives
/// up never leaves a registration half done.
pub const AGENT_IDENTITY_WAIT: Duration = Duration::from_secs(10);

/// Where the manager keeps state and which backend it talks to.
#[derive(Clone)]
pub struct AuthConfig {
    /// The Tally home (`auth.json` and the agent key live here).
    pub home: PathBuf,
    /// The API key from the environment (`OPENAI_API_KEY`), used when `auth.json` has none.
    pub env_api_key: Option<String>,
    /// Agent identity settings; `None` when `[features] use_agent_identity` is off.
    pub agent_identity: Option<AgentIdentityConfig>,
}

// The API key never reaches Debug output.
impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("home", &self.home)
            .field(
                "env_api_key",
                &self.env_api_key.as_ref().map(|_| "<redacted>"),
            )
            .field("agent_identity", &self.agent_identity)
            .finish()
    }
}

impl AuthConfig {
    /// Config for `home`, with the API key read from `OPENAI_API_KEY`.
    pub fn from_env(home: &Path) -> Self {
        Self {
            home: home.to_path_buf(),
            env_api_key: std::env::var("OPENAI_API_KEY")
                .ok()
                .filter(|k| !k.trim().is_empty()),
            agent_identity: None,
        }
    }
}

/// How the current credential was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// An OpenAI API key.
    ApiKey,
    /// ChatGPT tokens that Tally owns (in `auth.json`) and refreshes itself.
    Chatgpt,
    /// ChatGPT tokens that the client owns; refreshed by asking the client.
    ChatgptAuthTokens,
}

/// What can be shown about the current credential: never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthStatus {
    /// `None` when not logged in.
    pub mode: Option<AuthMode>,
    /// True when the API key comes from the environment rather than `auth.json`.
    pub from_env: bool,
    /// Email from the id token.
    pub email: Option<String>,
    /// ChatGPT plan.
    pub plan_type: Option<String>,
    /// ChatGPT account id.
    pub account_id: Option<String>,
}

#[derive(Clone)]
enum Credentials {
    None,
    ApiKey {
        key: String,
        from_env: bool,
    },
    Chatgpt {
        tokens: TokenData,
        external: Option<String>,
    },
}

/// The single owner of credentials: login, logout, refresh and the authorization header of every
/// backend request.
pub struct AuthManager {
    home: PathBuf,
    env_api_key: Option<String>,
    state: RwLock<Credentials>,
    // Single flight: one refresh at a time; waiters re-check the token after they get the lock.
    refresh_lock: tokio::sync::Mutex<()>,
    external_refresher: RwLock<Option<Arc<dyn TokenRefresher>>>,
    oauth: OAuthRefresher,
    identity: Option<AgentIdentity>,
    // Held while credentials are replaced (login, logout, a refresh's result), so a refresh that
    // finishes after a logout or another login cannot bring the old login back.
    replacing: std::sync::Mutex<()>,
}

impl std::fmt::Debug for AuthManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthManager")
            .field("home", &self.home)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl AuthManager {
    /// Loads credentials from `auth.json` (or the environment's API key).
    pub fn load(config: AuthConfig) -> Result<Arc<Self>, AuthError> {
        let stored = auth_json::read(&config.home)?;
        let identity = match config.agent_identity {
            Some(c) => Some(AgentIdentity::new(&config.home, c, stored.as_ref())?),
            None => None,
        };
        let manager = AuthManager {
            home: config.home,
            env_api_key: config.env_api_key,
            state: RwLock::new(Credentials::None),
            refresh_lock: tokio::sync::Mutex::new(()),
            external_refresher: RwLock::new(None),
            oauth: OAuthRefresher::from_env(),
            identity,
            replacing: std::sync::Mutex::new(()),
        };
        manager.set_state(manager.credentials_from(stored));
        Ok(Arc::new(manager))
    }

    /// A manager that ignores `auth.json` (unreadable): only the environment's key applies.
    pub fn without_stored(config: AuthConfig) -> Arc<Self> {
        let manager = AuthManager {
            home: config.home,
            env_api_key: config.env_api_key,
            state: RwLock::new(Credentials::None),
            refresh_lock: tokio::sync::Mutex::new(()),
            external_refresher: RwLock::new(None),
            oauth: OAuthRefresher::from_env(),
            identity: None,
            replacing: std::sync::Mutex::new(()),
        };
        manager.set_state(manager.credentials_from(None));
        Arc::new(manager)
    }

    /// The Tally home this manager keeps state in.
    pub fn home(&self) -> &Path {
        &self.home
    }

    fn credentials_from(&self, stored: Option<AuthDotJson>) -> Credentials {
        let stored = stored.unwrap_or_default();
        if let Some(tokens) = stored.tokens.filter(|t| !t.access_token.is_empty()) {
            return Credentials::Chatgpt {
                tokens,
                external: None,
            };
        }
        if let Some(key) = stored.openai_api_key.filter(|k| !k.is_empty()) {
            return Credentials::ApiKey {
                key,
                from_env: false,
            };
        }
        match &self.env_api_key {
            Some(key) => Credentials::ApiKey {
                key: key.clone(),
                from_env: true,
            },
            None => Credentials::None,
        }
    }

    fn lock_replacing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.replacing.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn state(&self) -> Credentials {
        match self.state.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_state(&self, credentials: Credentials) {
        if let Some(identity) = &self.identity {
            identity.set_principal(principal_of_headers(&bearer_headers_of(&credentials)));
        }
        match self.state.write() {
            Ok(mut s) => *s = credentials,
            Err(poisoned) => *poisoned.into_inner() = credentials,
        }
    }

    /// What is logged in, without secrets.
    pub fn status(&self) -> AuthStatus {
        match self.state() {
            Credentials::None => AuthStatus::default(),
            Credentials::ApiKey { from_env, .. } => AuthStatus {
                mode: Some(AuthMode::ApiKey),
                from_env,
                ..AuthStatus::default()
            },
            Credentials::Chatgpt { tokens, external } => {
                let id = parse_claims(&tokens.id_token).unwrap_or_default();
                let access = parse_claims(&tokens.access_token).unwrap_or_default();
                AuthStatus {
                    mode: Some(if external.is_some() {
                        AuthMode::ChatgptAuthTokens
                    } else {
                        AuthMode::Chatgpt
                    }),
                    from_env: false,
                    email: id.email.or(access.email),
                    plan_type: external
                        .filter(|p| !p.is_empty())
                        .or(id.plan_type)
                        .or(access.plan_type),
                    account_id: tokens.account_id.clone().or(id.account_id),
                }
            }
        }
    }

    /// Saves an API key in `auth.json` (replacing ChatGPT tokens) and uses it from now on.
    pub fn login_api_key(&self, key: &str) -> Result<(), AuthError> {
        let key = key.trim();
        if key.is_empty() {
            return Err(AuthError::Invalid("the API key is empty".into()));
        }
        let _replacing = self.lock_replacing();
        let mut file = auth_json::read(&self.home)?.unwrap_or_default();
        file.openai_api_key = Some(key.to_owned());
        file.tokens = None;
        file.last_refresh = None;
        auth_json::write(&self.home, &file)?;
        self.set_state(Credentials::ApiKey {
            key: key.to_owned(),
            from_env: false,
        });
        Ok(())
    }

    /// Uses ChatGPT tokens that the client owns; kept in memory only, refreshed by asking the
    /// client through the refresher set with [`AuthManager::set_external_refresher`].
    pub fn login_external_tokens(
        &self,
        access_token: &str,
        account_id: &str,
        plan_type: Option<String>,
    ) -> Result<(), AuthError> {
        if access_token.trim().is_empty() || account_id.trim().is_empty() {
            return Err(AuthError::Invalid(
                "accessToken and chatgptAccountId are required".into(),
            ));
        }
        let _replacing = self.lock_replacing();
        self.set_state(Credentials::Chatgpt {
            tokens: TokenData {
                access_token: access_token.to_owned(),
                account_id: Some(account_id.to_owned()),
                ..TokenData::default()
            },
            external: Some(plan_type.unwrap_or_default()),
        });
        Ok(())
    }

    /// Forgets stored credentials (removes `auth.json`); an API key in the environment still
    /// applies afterwards. Returns true when something was removed.
    pub fn logout(&self) -> Result<bool, AuthError> {
        let _replacing = self.lock_replacing();
        let removed = auth_json::delete(&self.home)?;
        let had_memory = matches!(
            self.state(),
            Credentials::Chatgpt {
                external: Some(_),
                ..
            }
        );
        self.set_state(self.credentials_from(None));
        Ok(removed || had_memory)
    }

    /// Sets who refreshes client-owned tokens (the app-server's refresh bridge).
    pub fn set_external_refresher(&self, refresher: Arc<dyn TokenRefresher>) {
        match self.external_refresher.write() {
            Ok(mut r) => *r = Some(refresher),
            Err(poisoned) => *poisoned.into_inner() = Some(refresher),
        }
    }

    fn external_refresher(&self) -> Option<Arc<dyn TokenRefresher>> {
        match self.external_refresher.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Refreshes ChatGPT tokens that expire within [`REFRESH_MARGIN`]; a no-op otherwise.
    pub async fn ensure_fresh(&self) -> Result<(), AuthError> {
        let Credentials::Chatgpt { tokens, .. } = self.state() else {
            return Ok(());
        };
        if !expires_soon(&tokens.access_token, SystemTime::now()) {
            return Ok(());
        }
        self.refresh_if_unchanged(&tokens.access_token).await
    }

    /// Starts [`AuthManager::ensure_fresh`] in the background when the tokens expire soon, for
    /// callers that build headers synchronously (the analytics sink); the current request still
    /// goes out with the current token, which is valid for up to [`REFRESH_MARGIN`].
    pub fn spawn_refresh_if_expiring(self: &Arc<Self>) {
        let Credentials::Chatgpt { tokens, .. } = self.state() else {
            return;
        };
        if !expires_soon(&tokens.access_token, SystemTime::now()) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let manager = Arc::clone(self);
        runtime.spawn(async move {
            if let Err(e) = manager.ensure_fresh().await {
                tracing::warn!(error = %e, "background token refresh failed");
            }
        });
    }

    /// Refreshes after the backend refused the token (401), once however many callers saw it.
    pub async fn refresh_after_unauthorized(&self) -> Result<(), AuthError> {
        let Credentials::Chatgpt { tokens, .. } = self.state() else {
            return Err(AuthError::Refresh("no ChatGPT tokens to refresh".into()));
        };
        self.refresh_if_unchanged(&tokens.access_token).await
    }

    async fn refresh_if_unchanged(&self, seen_access_token: &str) -> Result<(), AuthError> {
        let _guard = tokio::time::timeout(REFRESH_DEADLINE, self.refresh_lock.lock())
            .await
            .map_err(|_| AuthError::Refresh("timed out waiting for another refresh".into()))?;
        // Another caller refreshed while this one waited: its result is ours.
        let Credentials::Chatgpt { tokens, external } = self.state() else {
            return Ok(());
        };
        if tokens.access_token != seen_access_token {
            return Ok(());
        }
        let refreshed = match &external {
            Some(_) => {
                let refresher = self.external_refresher().ok_or_else(|| {
                    AuthError::Refresh("no client is connected to refresh the tokens".into())
                })?;
                tokio::time::timeout(
                    REFRESH_DEADLINE,
                    refresher.refresh(tokens.account_id.clone()),
                )
                .await
                .map_err(|_| AuthError::Refresh("the refresh timed out".into()))??
            }
            None => self.oauth.refresh(&tokens.refresh_token).await?,
        };
        self.apply_refresh(tokens, external, refreshed)
    }

    fn apply_refresh(
        &self,
        old: TokenData,
        external: Option<String>,
        new: RefreshedTokens,
    ) -> Result<(), AuthError> {
        let _replacing = self.lock_replacing();
        // The login this refresh began for may be gone (a logout, another login) by now.
        let unchanged = matches!(
            self.state(),
            Credentials::Chatgpt { tokens, .. } if tokens.access_token == old.access_token
        );
        if !unchanged {
            tracing::info!(
                "the login changed while its tokens were refreshed; the refresh is dropped"
            );
            return Ok(());
        }
        let tokens = TokenData {
            id_token: new.id_token.unwrap_or(old.id_token),
            access_token: new.access_token,
            refresh_token: new.refresh_token.unwrap_or(old.refresh_token),
            account_id: new.account_id.or(old.account_id),
        };
        let external = external.map(|old_plan| new.plan_type.unwrap_or(old_plan));
        if external.is_none() {
            let mut file = auth_json::read(&self.home)?.unwrap_or_default();
            file.tokens = Some(tokens.clone());
            file.last_refresh =
                Some(humantime::format_rfc3339_seconds(SystemTime::now()).to_string());
            auth_json::write(&self.home, &file)?;
        }
        self.set_state(Credentials::Chatgpt { tokens, external });
        tracing::info!("ChatGPT tokens refreshed");
        Ok(())
    }

    /// The API key or access token, for callers that build their own header (none should).
    #[cfg(test)]
    fn bearer_token(&self) -> Option<(String, Option<String>)> {
        bearer_of(&self.state())
    }

    /// Bearer-only headers, for bootstrap paths (registration, task registration, refresh) that
    /// must never use an AgentAssertion.
    pub fn bearer_headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        bearer_headers_of(&self.state())
    }

    /// The default authorization of a backend request made outside any thread: an
    /// AgentAssertion for the background task once agent identity is registered, else bearer.
    pub fn default_headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        self.headers_for(None)
    }

    /// The authorization of a request made for `thread_id` (its own task when registered).
    pub fn thread_headers(&self, thread_id: &str) -> Vec<(HeaderName, HeaderValue)> {
        self.headers_for(Some(thread_id))
    }

    /// Like [`AuthManager::default_headers`], with `bearer` (e.g. a collector token) in place of
    /// the login's bearer when no AgentAssertion applies.
    pub fn default_headers_or(
        &self,
        bearer: Option<&HeaderValue>,
    ) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = self.headers_for(None);
        let signed = headers.iter().any(|(name, value)| {
            name == http::header::AUTHORIZATION && value.as_bytes().starts_with(b"AgentAssertion ")
        });
        if let (false, Some(bearer)) = (signed, bearer) {
            headers.retain(|(name, _)| name != http::header::AUTHORIZATION);
            headers.insert(0, (http::header::AUTHORIZATION, bearer.clone()));
        }
        headers
    }

    fn headers_for(&self, thread_id: Option<&str>) -> Vec<(HeaderName, HeaderValue)> {
        let mut bearer = self.bearer_headers();
        let Some(identity) = &self.identity else {
            return bearer;
        };
        match identity.assertion(thread_id) {
            Some(assertion) => {
                let Some(v) = sensitive(&format!("AgentAssertion {assertion}")) else {
                    return bearer;
                };
                bearer.retain(|(name, _)| name != http::header::AUTHORIZATION);
                bearer.insert(0, (http::header::AUTHORIZATION, v));
                bearer
            }
            None => {
                identity.note_fallback();
                bearer
            }
        }
    }

    /// The agent identity, when the feature is on.
    pub fn agent_identity(&self) -> Option<&AgentIdentity> {
        self.identity.as_ref()
    }

    /// Registers the agent runtime and the background task when the feature is on (bearer-only
    /// bootstrap); failures leave requests on bearer and are logged once.
    pub async fn prepare_agent_identity(&self) {
        if let Some(identity) = &self.identity {
            identity.prepare(&self.bearer_headers()).await;
        }
    }

    /// Registers (once) the task of `thread_id`, so its first request is already signed.
    pub async fn prewarm_thread_task(&self, thread_id: &str) {
        if let Some(identity) = &self.identity {
            identity
                .ensure_thread_task(&self.bearer_headers(), thread_id)
                .await;
        }
    }

    /// The authorization of a request for `thread_id` when the caller can wait: a thread that
    /// wants its own task and has none under the current runtime (its prewarm is still running or
    /// failed a while ago, or its task belonged to a runtime that was dropped since) gets one
    /// first, within [`AGENT_IDENTITY_WAIT`]; then as [`AuthManager::thread_headers`].
    pub async fn thread_request_headers(
        self: &Arc<Self>,
        thread_id: &str,
    ) -> Vec<(HeaderName, HeaderValue)> {
        if self
            .identity
            .as_ref()
            .is_some_and(|i| i.wants_thread_task(thread_id))
        {
            let manager = Arc::clone(self);
            let thread = thread_id.to_owned();
            let work = tokio::spawn(async move { manager.prewarm_thread_task(&thread).await });
            if tokio::time::timeout(AGENT_IDENTITY_WAIT, work)
                .await
                .is_err()
            {
                tracing::warn!(
                    thread_id,
                    "agent task not registered in time; this request uses the background task"
                );
            }
        }
        self.thread_headers(thread_id)
    }

    /// A backend answered 401 with the reason `code` to a request sent with `authorization` (an
    /// `AgentAssertion`; anything else never recovers). True when the request may be sent once
    /// more with fresh headers; callers retry once per request, never in a loop:
    /// - the runtime is revoked or unknown: it is dropped and registered again (as
    ///   [`AuthManager::agent_assertion_refused`], but a runtime another caller already replaced
    ///   is not dropped twice); true when the refused runtime is no longer the one in use (a new
    ///   one signs, or requests fell back to bearer because registering again is paused);
    /// - `agent_task_unknown`: the task the header named (a thread's or the background one) is
    ///   dropped and a new one of the same runtime registered and persisted; a second such
    ///   refusal within [`crate::agent_identity::REREGISTER_COOLDOWN`] registers nothing and
    ///   requests use bearer until it has passed;
    /// - the timestamp was refused (expired or future-dated: clock skew): nothing is registered,
    ///   the header is signed again with a new timestamp (logged once).
    ///
    /// Waits at most [`AGENT_IDENTITY_WAIT`], a recovery going on in the background past it.
    pub async fn recover_refused_assertion(
        self: &Arc<Self>,
        authorization: &HeaderValue,
        code: &str,
    ) -> bool {
        let Some(identity) = &self.identity else {
            return false;
        };
        let Some(refused) = crate::AgentAssertion::from_header(authorization) else {
            return false;
        };
        if crate::registration::is_clock_skew(code) {
            return identity.clock_skew_refused(&refused, code).await;
        }
        let task_gone = crate::registration::is_task_gone(code);
        if !task_gone && !crate::registration::is_runtime_gone(code) {
            return false;
        }
        let manager = Arc::clone(self);
        let code = code.to_owned();
        let stale = refused.agent_runtime_id.clone();
        let work = tokio::spawn(async move {
            let Some(identity) = &manager.identity else {
                return false;
            };
            let bearer = manager.bearer_headers();
            if task_gone {
                return identity.task_refused(&bearer, &refused).await;
            }
            identity
                .assertion_refused(&bearer, &code, Some(&stale))
                .await;
            identity.runtime_id().as_deref() != Some(stale.as_str())
        });
        matches!(
            tokio::time::timeout(AGENT_IDENTITY_WAIT, work).await,
            Ok(Ok(true))
        )
    }

    /// Keeps each thread's agent task in `store` (e.g. with the thread's own record) instead of
    /// `auth.json`; a no-op when agent identity is off.
    pub fn set_thread_task_store(&self, store: Arc<dyn crate::ThreadTaskStore>) {
        if let Some(identity) = &self.identity {
            identity.set_thread_task_store(store);
        }
    }

    /// Tells the manager that a backend refused its `AgentAssertion` with the 401 reason `code`
    /// (see [`crate::registration::rejection_code`]): when the runtime is revoked or unknown
    /// there, it is dropped and registered again, at most once per
    /// [`crate::agent_identity::REREGISTER_COOLDOWN`] (bearer-only bootstrap). True when a new
    /// runtime is registered; other codes change nothing.
    pub async fn agent_assertion_refused(&self, code: &str) -> bool {
        match &self.identity {
            Some(identity) => {
                identity
                    .assertion_refused(&self.bearer_headers(), code, None)
                    .await
            }
            None => false,
        }
    }
}

/// The bearer token of `credentials` and the ChatGPT account it speaks for (from the token
/// data, else the tokens' claims).
fn bearer_of(credentials: &Credentials) -> Option<(String, Option<String>)> {
    match credentials {
        Credentials::None => None,
        Credentials::ApiKey { key, .. } => Some((key.clone(), None)),
        Credentials::Chatgpt { tokens, .. } => {
            let account = tokens
                .account_id
                .clone()
                .or_else(|| parse_claims(&tokens.id_token)?.account_id)
                .or_else(|| parse_claims(&tokens.access_token)?.account_id);
            Some((tokens.access_token.clone(), account))
        }
    }
}

/// `Authorization: Bearer …` and `chatgpt-account-id` of `credentials`.
fn bearer_headers_of(credentials: &Credentials) -> Vec<(HeaderName, HeaderValue)> {
    let Some((token, account_id)) = bearer_of(credentials) else {
        return Vec::new();
    };
    let mut headers = Vec::with_capacity(2);
    if let Some(v) = sensitive(&format!("Bearer {token}")) {
        headers.push((http::header::AUTHORIZATION, v));
    }
    if let Some(v) = account_id
        .as_deref()
        .and_then(|a| HeaderValue::from_str(a).ok())
    {
        headers.push((HeaderName::from_static(ACCOUNT_ID_HEADER), v));
    }
    headers
}

fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(value).ok()?;
    v.set_sensitive(true);
    Some(v)
}

fn expires_soon(access_token: &str, now: SystemTime) -> bool {
    parse_claims(access_token)
        .and_then(|c| c.expires_at)
        .is_some_and(|exp| exp <= now + REFRESH_MARGIN)
}

#[cfg(test)]
#[path = "manager_tests.rs"]
mod tests;

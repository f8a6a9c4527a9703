//! Builds the `AuthManager` from config and connects it to the rest of the app-server: the
//! external refresh bridge, the analytics sink's auth headers and assertion recovery, and the
//! threads' rollouts as the keepers of their agent tasks.

use std::sync::Arc;
use tally_auth::{
    AgentIdentityConfig, AuthConfig, AuthError, AuthManager, RefreshedTokens, TokenRefresher,
};
use tally_core::thread_tasks::RolloutThreadTaskStore;
use tally_core::{Config, ThreadManager};

use crate::auth_bridge::ExternalAuthRefreshBridge;

/// The auth settings of `config`: home, `OPENAI_API_KEY`, and agent identity when the feature is on.
pub fn auth_config(config: &Config) -> AuthConfig {
    let mut auth = AuthConfig::from_env(&config.home);
    if config.use_agent_identity {
        auth.agent_identity = Some(AgentIdentityConfig {
            authapi_base_url: config.agent_identity_authapi_base_url.clone(),
            agent_version: tally_core::TALLY_VERSION.to_string(),
            agent_harness_id: "tally".into(),
            running_location: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            allowed_hosts: config.agent_identity_allowed_hosts.clone(),
        });
    }
    auth
}

/// Loads the manager; an unreadable `auth.json` is logged and treated as absent, so the server
/// still starts (with the environment's key, if any).
pub fn load_auth(config: &Config) -> Arc<AuthManager> {
    let settings = auth_config(config);
    match AuthManager::load(settings.clone()) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "cannot load credentials; continuing without auth.json");
            AuthManager::without_stored(settings)
        }
    }
}

/// Refreshes client-owned tokens by asking the client through the bridge.
pub(crate) struct BridgeRefresher(pub ExternalAuthRefreshBridge);

#[async_trait::async_trait]
impl TokenRefresher for BridgeRefresher {
    async fn refresh(
        &self,
        previous_account_id: Option<String>,
    ) -> Result<RefreshedTokens, AuthError> {
        let tokens = self
            .0
            .refresh(previous_account_id)
            .await
            .map_err(|e| AuthError::Refresh(e.to_string()))?;
        Ok(RefreshedTokens {
            access_token: tokens.access_token,
            account_id: Some(tokens.chatgpt_account_id),
            plan_type: tokens.chatgpt_plan_type,
            ..RefreshedTokens::default()
        })
    }
}

/// The analytics sink's headers: AuthManager's default decision (bearer, or the background
/// task's AgentAssertion once registered), computed per POST.
pub fn analytics_auth(auth: Arc<AuthManager>) -> tally_analytics::delivery::AuthHeaderProvider {
    Arc::new(move || auth.default_headers())
}

/// Keeps each thread's agent task in its rollout (instead of `auth.json`): a resumed thread signs
/// with the task it had while the runtime is the same, a fork registers its own. The store holds
/// the threads weakly, so the manager and auth never keep each other alive.
pub fn keep_thread_tasks_with_threads(auth: &AuthManager, threads: &Arc<ThreadManager>) {
    auth.set_thread_task_store(Arc::new(RolloutThreadTaskStore::new(threads)));
}

/// Renews the agent identity when the collector refuses the analytics sink's `AgentAssertion`
/// because its runtime is gone, so the sink can post the batch once more at once.
pub(crate) struct AnalyticsAssertionRecovery(pub Arc<AuthManager>);

#[async_trait::async_trait]
impl tally_analytics::delivery::AssertionRecovery for AnalyticsAssertionRecovery {
    async fn recover(&self, authorization: &axum::http::HeaderValue, refusal: &[u8]) -> bool {
        match tally_auth::registration::rejection_code(refusal) {
            Some(code) => self.0.recover_refused_assertion(authorization, &code).await,
            None => false,
        }
    }
}

//! Tally's credentials: `AuthManager` owns the API key or ChatGPT tokens (`auth.json` in Codex's
//! format), refreshes tokens, and decides per backend request between bearer and a signed
//! `AgentAssertion` when agent identity is on.

pub mod agent_identity;
pub mod auth_json;
mod error;
mod manager;
mod principal;
mod refresh;
pub mod registration;
pub mod sealed_task_id;
pub mod supported_hosts;
pub mod thread_task_store;
pub mod token;

pub use agent_identity::{AgentAssertion, AgentIdentity, AgentIdentityConfig};
pub use error::AuthError;
pub use manager::{
    AuthConfig, AuthManager, AuthMode, AuthStatus, ACCOUNT_ID_HEADER, AGENT_IDENTITY_WAIT,
    REFRESH_DEADLINE, REFRESH_MARGIN,
};
pub use refresh::{RefreshedTokens, TokenRefresher, TOKEN_URL_ENV};
pub use thread_task_store::ThreadTaskStore;

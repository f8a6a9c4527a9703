//! Who refreshes ChatGPT tokens: the OAuth token endpoint for tokens Tally owns, or the client
//! (through a [`TokenRefresher`] the app-server provides) for tokens the client owns.

use serde::Deserialize;

use crate::error::AuthError;
use crate::manager::REFRESH_DEADLINE;

/// Codex's OAuth client id; the token endpoint knows Codex-format refresh tokens by it.
const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
const DEFAULT_TOKEN_URL: &str = "https://auth.openai.com/oauth/token";
/// Environment variable that points refreshes at another token endpoint (tests, staging).
pub const TOKEN_URL_ENV: &str = "TALLY_REFRESH_TOKEN_URL_OVERRIDE";

/// New tokens from a refresh; absent fields keep their old values.
#[derive(Clone, Default, PartialEq)]
pub struct RefreshedTokens {
    /// The new access token.
    pub access_token: String,
    /// A new id token, if one was issued.
    pub id_token: Option<String>,
    /// A rotated refresh token, if one was issued.
    pub refresh_token: Option<String>,
    /// The account id, when the refresher knows it.
    pub account_id: Option<String>,
    /// The plan, when the refresher knows it.
    pub plan_type: Option<String>,
}

impl std::fmt::Debug for RefreshedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshedTokens")
            .field("account_id", &self.account_id)
            .field("plan_type", &self.plan_type)
            .finish_non_exhaustive()
    }
}

/// Refreshes client-owned tokens (implemented by the app-server over its refresh bridge).
#[async_trait::async_trait]
pub trait TokenRefresher: Send + Sync {
    /// Asks for fresh tokens; must finish within its own deadline.
    async fn refresh(
        &self,
        previous_account_id: Option<String>,
    ) -> Result<RefreshedTokens, AuthError>;
}

/// Refreshes Tally-owned tokens at the OAuth token endpoint.
pub(crate) struct OAuthRefresher {
    http: reqwest::Client,
    token_url: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    id_token: Option<String>,
    refresh_token: Option<String>,
}

impl OAuthRefresher {
    pub(crate) fn from_env() -> Self {
        let token_url = std::env::var(TOKEN_URL_ENV)
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_TOKEN_URL.to_owned());
        Self::with_url(token_url)
    }

    pub(crate) fn with_url(token_url: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(REFRESH_DEADLINE)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { http, token_url }
    }

    pub(crate) async fn refresh(&self, refresh_token: &str) -> Result<RefreshedTokens, AuthError> {
        if refresh_token.is_empty() {
            return Err(AuthError::Refresh("auth.json has no refresh_token".into()));
        }
        let body = serde_json::json!({
            "client_id": CLIENT_ID,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "scope": "openid profile email",
        });
        let response = self
            .http
            .post(&self.token_url)
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                AuthError::Refresh(format!("token endpoint unreachable: {}", e.without_url()))
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(AuthError::Refresh(format!(
                "token endpoint answered {status}"
            )));
        }
        let parsed: TokenResponse = response
            .json()
            .await
            .map_err(|_| AuthError::Refresh("token endpoint sent an unreadable answer".into()))?;
        let access_token = parsed
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| AuthError::Refresh("token endpoint sent no access_token".into()))?;
        Ok(RefreshedTokens {
            access_token,
            id_token: parsed.id_token,
            refresh_token: parsed.refresh_token,
            account_id: None,
            plan_type: None,
        })
    }
}

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `account/read` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetAccountParams {
    #[serde(default)]
    pub refresh_token: bool,
}

/// `account/read` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GetAccountResponse {
    pub account: Option<Account>,
    pub requires_openai_auth: bool,
}

/// The signed-in account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Account {
    ApiKey,
    #[serde(rename_all = "camelCase")]
    Chatgpt {
        email: Option<String>,
        plan_type: String,
    },
}

/// `account/login/start` params: an API key, or ChatGPT tokens the client owns.
#[derive(Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum LoginAccountParams {
    #[serde(rename_all = "camelCase")]
    ApiKey { api_key: String },
    #[serde(rename_all = "camelCase")]
    ChatgptAuthTokens {
        access_token: String,
        chatgpt_account_id: String,
        #[serde(default)]
        chatgpt_plan_type: Option<String>,
    },
}

// Params carry secrets: Debug shows only which kind of login it is.
impl std::fmt::Debug for LoginAccountParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginAccountParams::ApiKey { .. } => f.write_str("LoginAccountParams::ApiKey"),
            LoginAccountParams::ChatgptAuthTokens { .. } => {
                f.write_str("LoginAccountParams::ChatgptAuthTokens")
            }
        }
    }
}

/// `account/login/start` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum LoginAccountResponse {
    ApiKey,
    ChatgptAuthTokens,
}

/// How the server is authenticated, as `account/updated` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AuthMode {
    #[serde(rename = "apikey")]
    ApiKey,
    Chatgpt,
    ChatgptAuthTokens,
    AgentIdentity,
}

/// `account/updated`: sent to every client when the credentials change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountUpdatedNotification {
    pub auth_mode: Option<AuthMode>,
    pub plan_type: Option<String>,
}

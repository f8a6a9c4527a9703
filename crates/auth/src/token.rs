//! What Tally reads from a ChatGPT JWT without verifying it: expiry, email and plan. The backend
//! verifies the token; Tally only needs to know when to refresh and what to show.

use base64::Engine;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Claims Tally uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JwtClaims {
    /// `exp`, when present.
    pub expires_at: Option<SystemTime>,
    /// `email`, when present.
    pub email: Option<String>,
    /// `https://api.openai.com/auth.chatgpt_plan_type`, when present.
    pub plan_type: Option<String>,
    /// `https://api.openai.com/auth.chatgpt_account_id`, when present.
    pub account_id: Option<String>,
}

/// Decodes the payload of a JWT; `None` when it is not one.
pub fn parse_claims(jwt: &str) -> Option<JwtClaims> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let auth = value.get("https://api.openai.com/auth");
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
    Some(JwtClaims {
        expires_at: value
            .get("exp")
            .and_then(|v| v.as_u64())
            .map(|s| UNIX_EPOCH + Duration::from_secs(s)),
        email: text(value.get("email")),
        plan_type: text(auth.and_then(|a| a.get("chatgpt_plan_type"))),
        account_id: text(auth.and_then(|a| a.get("chatgpt_account_id"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: serde_json::Value) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.sig", e.encode(b"{}"), e.encode(payload.to_string()))
    }

    #[test]
    fn reads_expiry_email_and_plan() {
        let token = jwt(serde_json::json!({
            "exp": 2_000_000_000u64,
            "email": "a@example.com",
            "https://api.openai.com/auth": {"chatgpt_plan_type": "plus", "chatgpt_account_id": "acc"},
        }));
        let c = parse_claims(&token).unwrap_or_default();
        assert_eq!(
            c.expires_at,
            Some(UNIX_EPOCH + Duration::from_secs(2_000_000_000))
        );
        assert_eq!(c.email.as_deref(), Some("a@example.com"));
        assert_eq!(c.plan_type.as_deref(), Some("plus"));
        assert_eq!(c.account_id.as_deref(), Some("acc"));
    }

    #[test]
    fn a_non_jwt_has_no_claims() {
        assert_eq!(parse_claims("sk-plain"), None);
        assert_eq!(parse_claims("a.!!!.b"), None);
    }
}

//! Who a login speaks for, read from the bearer headers it sends: the ChatGPT account (its
//! `chatgpt-account-id`), else a digest of the bearer token (an API key; the key itself is never
//! written beside an identity). An agent identity is registered under one login and signs for it
//! only; reading the login from the very headers a registration sends means a record can never
//! name another login than the one that registered it.

use http::{HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use crate::ACCOUNT_ID_HEADER;

/// `chatgpt:<account>` or `api_key:<first 8 bytes of SHA-256, hex>`; `None` without a bearer.
pub fn principal_of_headers(headers: &[(HeaderName, HeaderValue)]) -> Option<String> {
    let value = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.to_str().ok())
    };
    if let Some(account) = value(ACCOUNT_ID_HEADER).filter(|a| !a.is_empty()) {
        return Some(format!("chatgpt:{account}"));
    }
    let token = value(http::header::AUTHORIZATION.as_str())?.strip_prefix("Bearer ")?;
    let digest = Sha256::digest(token.as_bytes());
    let prefix: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("api_key:{prefix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> Vec<(HeaderName, HeaderValue)> {
        pairs
            .iter()
            .filter_map(|(n, v)| Some((HeaderName::from_static(n), HeaderValue::from_str(v).ok()?)))
            .collect()
    }

    #[test]
    fn the_account_names_a_chatgpt_login_and_a_digest_an_api_key() {
        let chatgpt = headers(&[
            ("authorization", "Bearer tok-1"),
            (ACCOUNT_ID_HEADER, "acct-9"),
        ]);
        assert_eq!(
            principal_of_headers(&chatgpt).as_deref(),
            Some("chatgpt:acct-9")
        );
        let refreshed = headers(&[
            ("authorization", "Bearer tok-2"),
            (ACCOUNT_ID_HEADER, "acct-9"),
        ]);
        assert_eq!(
            principal_of_headers(&refreshed),
            principal_of_headers(&chatgpt)
        );
        let key = principal_of_headers(&headers(&[("authorization", "Bearer sk-one")]));
        let other = principal_of_headers(&headers(&[("authorization", "Bearer sk-two")]));
        assert!(key
            .as_deref()
            .is_some_and(|k| k.starts_with("api_key:") && !k.contains("sk-")));
        assert_ne!(key, other);
        assert_eq!(principal_of_headers(&[]), None);
    }
}

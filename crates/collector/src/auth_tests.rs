use axum::http::{HeaderMap, HeaderValue};

use super::*;
use crate::config::TokenConfig;

const LOOPBACK: Option<SocketAddr> = Some(SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    50000,
));
const REMOTE: Option<SocketAddr> = Some(SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7)),
    50000,
));

fn config(unauthenticated: Unauthenticated) -> CollectorConfig {
    let sha = crate::dedup::hex(&Sha256::digest(b"hashed-secret"));
    CollectorConfig {
        allow_unauthenticated: unauthenticated,
        tokens: vec![
            TokenConfig {
                token: Some("clear-secret".into()),
                token_sha256: None,
                account: Some("team-a".into()),
                label: "laptops".into(),
                scopes: vec![Scope::Ingest],
            },
            TokenConfig {
                token: None,
                token_sha256: Some(sha.to_uppercase()),
                account: None,
                label: "ci".into(),
                scopes: vec![Scope::Ingest, Scope::Read],
            },
        ],
        ..CollectorConfig::default()
    }
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

#[test]
fn configured_tokens_authenticate_with_their_account() {
    let auth = Authenticator::from_config(&config(Unauthenticated::Deny)).unwrap();
    let p = auth
        .authenticate(
            &headers(&[
                ("authorization", "Bearer clear-secret"),
                (ACCOUNT_HEADER, "spoof"),
            ]),
            REMOTE,
            Scope::Ingest,
        )
        .unwrap();
    assert_eq!(
        p.account, "team-a",
        "the token's account wins over the header"
    );
    assert_eq!(p.label, "laptops");
    let p = auth
        .authenticate(
            &headers(&[
                ("authorization", "bearer hashed-secret"),
                (ACCOUNT_HEADER, "acct-9"),
            ]),
            REMOTE,
            Scope::Read,
        )
        .unwrap();
    assert_eq!(
        p.account, "acct-9",
        "no configured account: the header names it"
    );
}

#[test]
fn missing_unknown_and_malformed_credentials_are_401() {
    let auth = Authenticator::from_config(&config(Unauthenticated::Deny)).unwrap();
    let err = |h: HeaderMap| auth.authenticate(&h, LOOPBACK, Scope::Ingest).unwrap_err();
    assert_eq!(err(headers(&[])), AuthError::Missing);
    assert_eq!(
        err(headers(&[("authorization", "Bearer nope")])),
        AuthError::UnknownToken
    );
    assert_eq!(
        err(headers(&[("authorization", "Bearer")])),
        AuthError::Malformed
    );
    // Basic carries a token as its password: "user" alone, or not base64, is malformed.
    for basic in ["Basic dXNlcg==", "Basic dXNlcjo=", "Basic !!!"] {
        assert_eq!(
            err(headers(&[("authorization", basic)])),
            AuthError::Malformed,
            "{basic}"
        );
    }
    assert_eq!(
        err(headers(&[("authorization", "Digest x")])),
        AuthError::UnsupportedScheme("Digest".into())
    );
    for e in [
        AuthError::Missing,
        AuthError::UnknownToken,
        AuthError::Malformed,
    ] {
        assert_eq!(e.status(), axum::http::StatusCode::UNAUTHORIZED);
    }
}

#[test]
fn agent_assertion_is_refused_with_a_reason_when_identity_is_disabled() {
    let mut config = config(Unauthenticated::Any);
    config.agent_identity.enabled = false;
    let auth = Authenticator::from_config(&config).unwrap();
    let err = auth
        .authenticate(
            &headers(&[(
                "authorization",
                "AgentAssertion eyJhZ2VudF9ydW50aW1lX2lkIjoiYSJ9",
            )]),
            LOOPBACK,
            Scope::Ingest,
        )
        .unwrap_err();
    assert_eq!(err, AuthError::AgentAssertionUnsupported);
    assert_eq!(err.status(), axum::http::StatusCode::UNAUTHORIZED);
    assert!(err.to_string().contains("AgentAssertion"));
}

#[test]
fn a_token_as_the_password_of_basic_credentials_is_that_token() {
    let auth = Authenticator::from_config(&config(Unauthenticated::Deny)).unwrap();
    // base64("reader:hashed-secret") and base64(":clear-secret")
    let p = auth
        .authenticate(
            &headers(&[("authorization", "Basic cmVhZGVyOmhhc2hlZC1zZWNyZXQ=")]),
            REMOTE,
            Scope::Read,
        )
        .unwrap();
    assert_eq!(p.label, "ci");
    let err = auth
        .authenticate(
            &headers(&[("authorization", "basic OmNsZWFyLXNlY3JldA==")]),
            REMOTE,
            Scope::Read,
        )
        .unwrap_err();
    assert_eq!(err.status(), axum::http::StatusCode::FORBIDDEN);
}

#[test]
fn a_token_without_the_scope_is_403() {
    let auth = Authenticator::from_config(&config(Unauthenticated::Deny)).unwrap();
    let err = auth
        .authenticate(
            &headers(&[("authorization", "Bearer clear-secret")]),
            REMOTE,
            Scope::Read,
        )
        .unwrap_err();
    assert_eq!(err.status(), axum::http::StatusCode::FORBIDDEN);
}

#[test]
fn anonymous_access_follows_the_peer_rule() {
    let loopback_only = Authenticator::from_config(&config(Unauthenticated::Loopback)).unwrap();
    let none = headers(&[(ACCOUNT_HEADER, "account-123")]);
    let p = loopback_only
        .authenticate(&none, LOOPBACK, Scope::Ingest)
        .unwrap();
    assert_eq!(p.account, "account-123");
    assert_eq!(p.label, "anonymous");
    assert_eq!(
        loopback_only.authenticate(&none, REMOTE, Scope::Ingest),
        Err(AuthError::Missing)
    );
    assert_eq!(
        loopback_only.authenticate(&none, None, Scope::Ingest),
        Err(AuthError::Missing),
        "an unknown peer is not loopback"
    );
    // Codex always sends its ChatGPT token: where anonymous is allowed it is not an error.
    let codex = headers(&[("authorization", "Bearer chatgpt-access-token")]);
    assert!(loopback_only
        .authenticate(&codex, LOOPBACK, Scope::Ingest)
        .is_ok());
    assert_eq!(
        loopback_only.authenticate(&codex, REMOTE, Scope::Ingest),
        Err(AuthError::UnknownToken)
    );
    let any = Authenticator::from_config(&config(Unauthenticated::Any)).unwrap();
    assert!(any.authenticate(&none, REMOTE, Scope::Ingest).is_ok());
}

#[test]
fn debug_output_never_shows_tokens() {
    let auth = Authenticator::from_config(&config(Unauthenticated::Deny)).unwrap();
    let text = format!("{auth:?}");
    assert!(!text.contains("secret"), "{text}");
}

//! Who is calling: bearer tokens from config (kept only as SHA-256 digests, compared in constant
//! time), unauthenticated callers where the config allows them, and `AgentAssertion` credentials
//! of registered agent identities (verified by [`crate::agent_identity`], refused when disabled).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::HeaderMap;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::agent_identity::{IdentityRegistry, Rejection};
use crate::config::{parse_sha256_hex, CollectorConfig, ConfigError, Scope, Unauthenticated};
use crate::event::{truncate, MAX_ACCOUNT_LEN};
use crate::identity_backend::open_backend;

/// Header carrying the ChatGPT account id (sent by Codex).
pub const ACCOUNT_HEADER: &str = "chatgpt-account-id";

/// A credential as presented in `Authorization`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential<'a> {
    /// A token: `Bearer <token>`, or `Basic` with the token as the password (how a browser sends
    /// one when the dashboard asks; the user name is not looked at).
    Bearer(Cow<'a, str>),
    /// `AgentAssertion <base64url>`: a signed assertion of a registered agent identity.
    AgentAssertion(&'a str),
}

/// Parses the `Authorization` header: `Ok(None)` when absent.
pub fn parse_authorization(headers: &HeaderMap) -> Result<Option<Credential<'_>>, AuthError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| AuthError::Malformed)?;
    let (scheme, rest) = value.trim().split_once(' ').ok_or(AuthError::Malformed)?;
    let rest = rest.trim();
    if rest.is_empty() {
        return Err(AuthError::Malformed);
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Some(Credential::Bearer(Cow::Borrowed(rest))))
    } else if scheme.eq_ignore_ascii_case("basic") {
        basic_password(rest)
            .map(|token| Some(Credential::Bearer(Cow::Owned(token))))
            .ok_or(AuthError::Malformed)
    } else if scheme.eq_ignore_ascii_case("agentassertion") {
        Ok(Some(Credential::AgentAssertion(rest)))
    } else {
        Err(AuthError::UnsupportedScheme(
            truncate(scheme, 32).to_owned(),
        ))
    }
}

/// The password of `Basic` credentials (`base64(user:password)`), when there is one.
fn basic_password(encoded: &str) -> Option<String> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_user, password) = text.split_once(':')?;
    (!password.is_empty()).then(|| password.to_owned())
}

/// Who a request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Account the request's events belong to ("" when unknown).
    pub account: String,
    /// Token label, or `anonymous`.
    pub label: String,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header and unauthenticated access is not allowed from this peer.
    #[error("missing Authorization header (expected `Bearer <token>`)")]
    Missing,
    /// The header is not `<scheme> <credentials>`.
    #[error("malformed Authorization header (expected `Bearer <token>`)")]
    Malformed,
    /// A scheme other than `Bearer`, `Basic` or `AgentAssertion`.
    #[error("unsupported authorization scheme `{0}` (expected `Bearer`)")]
    UnsupportedScheme(String),
    /// A bearer token that matches no configured token.
    #[error("unknown bearer token")]
    UnknownToken,
    /// `AgentAssertion` credentials sent to a collector without `[collector.agent_identity]`
    /// `enabled = true`.
    #[error("AgentAssertion verification is not enabled on this collector; use a bearer token")]
    AgentAssertionUnsupported,
    /// An `AgentAssertion` (or a task registration) that did not verify.
    #[error("{0}")]
    AgentAssertion(Rejection),
    /// A verified runtime over its rate limit: 429 with `Retry-After`.
    #[error("agent runtime over its rate limit; retry after {retry_after_seconds} s")]
    AgentRateLimited {
        /// Seconds for `Retry-After`.
        retry_after_seconds: u32,
    },
    /// A valid token without the scope this endpoint needs.
    #[error("token `{label}` lacks the `{scope}` scope")]
    MissingScope {
        /// Label of the token.
        label: String,
        /// The scope needed.
        scope: &'static str,
    },
}

impl AuthError {
    /// The error for an agent-identity `rejection` by `registry`: 429 with the registry's
    /// `Retry-After` for a rate limit, else 401 with the reason.
    pub fn agent(rejection: Rejection, registry: &IdentityRegistry) -> Self {
        match rejection {
            Rejection::RateLimited => AuthError::AgentRateLimited {
                retry_after_seconds: registry.retry_after_seconds(),
            },
            other => AuthError::AgentAssertion(other),
        }
    }

    /// 401 for missing or bad credentials, 403 for good credentials without the right, 429 for a
    /// runtime over its rate limit.
    pub fn status(&self) -> axum::http::StatusCode {
        match self {
            AuthError::MissingScope { .. } => axum::http::StatusCode::FORBIDDEN,
            AuthError::AgentRateLimited { .. }
            | AuthError::AgentAssertion(Rejection::RateLimited) => {
                axum::http::StatusCode::TOO_MANY_REQUESTS
            }
            _ => axum::http::StatusCode::UNAUTHORIZED,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_credentials",
            AuthError::Malformed => "malformed_credentials",
            AuthError::UnsupportedScheme(_) => "unsupported_scheme",
            AuthError::UnknownToken => "unknown_token",
            AuthError::AgentAssertionUnsupported => "agent_assertion_unsupported",
            AuthError::AgentAssertion(r) => r.code(),
            AuthError::AgentRateLimited { .. } => Rejection::RateLimited.code(),
            AuthError::MissingScope { .. } => "missing_scope",
        }
    }
}

struct StoredToken {
    digest: [u8; 32],
    account: Option<String>,
    label: String,
    scopes: Vec<Scope>,
}

/// Decides who a request acts for.
pub struct Authenticator {
    tokens: Vec<StoredToken>,
    unauthenticated: Unauthenticated,
    identities: Option<Arc<IdentityRegistry>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("tokens", &self.tokens.len())
            .field("unauthenticated", &self.unauthenticated)
            .finish()
    }
}

impl Authenticator {
    /// Builds the token table from config; clear-text tokens are hashed here and not kept.
    pub fn from_config(config: &CollectorConfig) -> Result<Self, ConfigError> {
        let mut tokens = Vec::with_capacity(config.tokens.len());
        for (i, t) in config.tokens.iter().enumerate() {
            let digest = match (&t.token, &t.token_sha256) {
                (Some(clear), None) => Sha256::digest(clear.as_bytes()).into(),
                (None, Some(hex)) => {
                    parse_sha256_hex(&hex.to_ascii_lowercase()).ok_or_else(|| {
                        ConfigError::Invalid {
                            key: format!("collector.tokens[{i}].token_sha256"),
                            message: "must be 64 hexadecimal characters".into(),
                        }
                    })?
                }
                _ => {
                    return Err(ConfigError::Invalid {
                        key: format!("collector.tokens[{i}]"),
                        message: "set exactly one of `token` and `token_sha256`".into(),
                    })
                }
            };
            let label = if t.label.is_empty() {
                format!("token-{i}")
            } else {
                t.label.clone()
            };
            tokens.push(StoredToken {
                digest,
                account: t.account.clone(),
                label,
                scopes: t.scopes.clone(),
            });
        }
        let identities = if config.agent_identity.enabled {
            let invalid = |message: String| ConfigError::Invalid {
                key: "collector.agent_identity".into(),
                message,
            };
            let (backend, stored) = open_backend(config).map_err(invalid)?;
            let registry =
                IdentityRegistry::with_backend(config.agent_identity.clone(), backend, stored)
                    .map_err(invalid)?;
            Some(Arc::new(registry))
        } else {
            None
        };
        Ok(Authenticator {
            tokens,
            unauthenticated: config.allow_unauthenticated,
            identities,
        })
    }

    /// The agent-identity registry, when agent identity is enabled.
    pub fn identities(&self) -> Option<&Arc<IdentityRegistry>> {
        self.identities.as_ref()
    }

    /// Authenticates a caller that must hold a configured bearer token with `scope` (agent
    /// registration): anonymous access never applies here.
    pub fn authenticate_account(
        &self,
        headers: &HeaderMap,
        scope: Scope,
    ) -> Result<Principal, AuthError> {
        match parse_authorization(headers)? {
            Some(Credential::Bearer(token)) => match self.find_token(&token) {
                Some(stored) if stored.scopes.contains(&scope) => Ok(Principal {
                    account: stored
                        .account
                        .clone()
                        .unwrap_or_else(|| header_account(headers)),
                    label: stored.label.clone(),
                }),
                Some(stored) => Err(AuthError::MissingScope {
                    label: stored.label.clone(),
                    scope: scope_name(scope),
                }),
                None => Err(AuthError::UnknownToken),
            },
            Some(Credential::AgentAssertion(_)) => {
                Err(AuthError::UnsupportedScheme("AgentAssertion".into()))
            }
            None => Err(AuthError::Missing),
        }
    }

    /// Reads the agent an `AgentAssertion` names from the shared registry when this collector
    /// does not know it yet (it may have registered through another collector); call before
    /// [`Self::authenticate`], which verifies from memory.
    pub async fn look_up_agent(&self, headers: &HeaderMap) {
        if let (Some(registry), Ok(Some(Credential::AgentAssertion(credential)))) =
            (&self.identities, parse_authorization(headers))
        {
            registry.look_up(credential).await;
        }
    }

    /// Authenticates a request from `peer` for `scope`.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
        scope: Scope,
    ) -> Result<Principal, AuthError> {
        let header_account = header_account(headers);
        match parse_authorization(headers)? {
            Some(Credential::Bearer(token)) => {
                let found = self.find_token(&token);
                match found {
                    Some(stored) if stored.scopes.contains(&scope) => Ok(Principal {
                        account: stored.account.clone().unwrap_or(header_account),
                        label: stored.label.clone(),
                    }),
                    Some(stored) => Err(AuthError::MissingScope {
                        label: stored.label.clone(),
                        scope: scope_name(scope),
                    }),
                    // Codex always sends its ChatGPT bearer token: where anonymous ingest is
                    // allowed, an unknown token is treated as no token rather than refused.
                    None if self.allows_anonymous(peer) => Ok(anonymous(header_account)),
                    None => Err(AuthError::UnknownToken),
                }
            }
            Some(Credential::AgentAssertion(credential)) => {
                let registry = self
                    .identities
                    .as_ref()
                    .ok_or(AuthError::AgentAssertionUnsupported)?;
                let agent = registry
                    .verify(credential, std::time::SystemTime::now())
                    .map_err(|r| AuthError::agent(r, registry))?;
                Ok(Principal {
                    account: if agent.account.is_empty() {
                        header_account
                    } else {
                        agent.account
                    },
                    label: format!("agent:{}", agent.agent_runtime_id),
                })
            }
            None if self.allows_anonymous(peer) => Ok(anonymous(header_account)),
            None => Err(AuthError::Missing),
        }
    }

    fn allows_anonymous(&self, peer: Option<SocketAddr>) -> bool {
        match self.unauthenticated {
            Unauthenticated::Deny => false,
            Unauthenticated::Any => true,
            Unauthenticated::Loopback => peer.is_some_and(|p| p.ip().is_loopback()),
        }
    }

    /// Compares the digest against every configured token without early exit.
    fn find_token(&self, token: &str) -> Option<&StoredToken> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for stored in &self.tokens {
            if bool::from(stored.digest.ct_eq(&digest)) {
                found = Some(stored);
            }
        }
        found
    }
}

fn header_account(headers: &HeaderMap) -> String {
    headers
        .get(ACCOUNT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|s| truncate(s.trim(), MAX_ACCOUNT_LEN).to_owned())
        .unwrap_or_default()
}

fn anonymous(account: String) -> Principal {
    Principal {
        account,
        label: "anonymous".into(),
    }
}

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Ingest => "ingest",
        Scope::Read => "read",
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;

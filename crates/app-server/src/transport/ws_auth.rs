//! Bearer-token auth for WebSocket upgrades (PROTOCOL.md 1.2): a capability token compared in
//! constant time, or an HMAC-SHA256 JWT signed with a shared secret. Tokens are never logged.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// Codex's default tolerance for `exp`/`nbf` when validating signed bearer tokens.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(30);

/// How upgrades on a listener are authenticated.
#[derive(Clone)]
pub enum WsAuth {
    /// `Authorization: Bearer <token>` whose SHA-256 equals this digest.
    CapabilityToken { sha256: [u8; 32] },
    /// `Authorization: Bearer <JWT>` signed with HS256 under `secret`.
    SignedBearer(SignedBearer),
}

/// What a signed bearer token must satisfy.
#[derive(Clone)]
pub struct SignedBearer {
    secret: Vec<u8>,
    /// Expected `iss`, when set.
    pub issuer: Option<String>,
    /// Expected `aud` (a string or one of a list), when set.
    pub audience: Option<String>,
    /// Tolerance for `exp` and `nbf`.
    pub max_clock_skew: Duration,
}

impl std::fmt::Debug for WsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token, digest or secret.
        f.write_str(match self {
            WsAuth::CapabilityToken { .. } => "WsAuth::CapabilityToken",
            WsAuth::SignedBearer(_) => "WsAuth::SignedBearer",
        })
    }
}

/// Why an upgrade was refused; the text goes back in the 401 body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthRejection {
    #[error("missing Authorization: Bearer token")]
    Missing,
    #[error("invalid bearer token")]
    InvalidToken,
    #[error("malformed signed bearer token")]
    Malformed,
    #[error("signed bearer token: unsupported alg (expected HS256)")]
    UnsupportedAlg,
    #[error("signed bearer token: bad signature")]
    BadSignature,
    #[error("signed bearer token: expired")]
    Expired,
    #[error("signed bearer token: missing exp")]
    MissingExp,
    #[error("signed bearer token: not yet valid")]
    NotYetValid,
    #[error("signed bearer token: wrong issuer")]
    WrongIssuer,
    #[error("signed bearer token: wrong audience")]
    WrongAudience,
}

impl WsAuth {
    /// Capability-token auth with the token read from `path` (surrounding whitespace trimmed).
    pub fn capability_token_file(path: &Path) -> Result<Self, String> {
        let token = read_secret(path, "--ws-token-file")?;
        Ok(WsAuth::CapabilityToken {
            sha256: Sha256::digest(&token).into(),
        })
    }

    /// Capability-token auth given only the token's hex SHA-256 (`--ws-token-sha256`).
    pub fn capability_token_sha256(hex: &str) -> Result<Self, String> {
        let bytes = decode_hex(hex.trim())
            .filter(|b| b.len() == 32)
            .ok_or("--ws-token-sha256: expected 64 hex digits")?;
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&bytes);
        Ok(WsAuth::CapabilityToken { sha256 })
    }

    /// Signed-bearer-token auth with the HMAC secret read from `path`.
    pub fn signed_bearer_file(
        path: &Path,
        issuer: Option<String>,
        audience: Option<String>,
        max_clock_skew: Duration,
    ) -> Result<Self, String> {
        let secret = read_secret(path, "--ws-shared-secret-file")?;
        Ok(WsAuth::SignedBearer(SignedBearer {
            secret,
            issuer,
            audience,
            max_clock_skew,
        }))
    }

    /// Checks an `Authorization` header value at `now_secs` (Unix time).
    pub fn check(&self, authorization: Option<&[u8]>, now_secs: i64) -> Result<(), AuthRejection> {
        let token = authorization
            .and_then(bearer_token)
            .ok_or(AuthRejection::Missing)?;
        match self {
            WsAuth::CapabilityToken { sha256 } => {
                let presented: [u8; 32] = Sha256::digest(token).into();
                if bool::from(presented.ct_eq(sha256)) {
                    Ok(())
                } else {
                    Err(AuthRejection::InvalidToken)
                }
            }
            WsAuth::SignedBearer(s) => s.verify(token, now_secs),
        }
    }
}

impl SignedBearer {
    fn verify(&self, token: &[u8], now: i64) -> Result<(), AuthRejection> {
        let text = std::str::from_utf8(token).map_err(|_| AuthRejection::Malformed)?;
        let mut parts = text.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthRejection::Malformed);
        };
        let header_part = header;
        let header: serde_json::Value = decode_json(header)?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(AuthRejection::UnsupportedAlg);
        }
        let signature = b64(signature)?;
        let signing_input = format!("{header_part}.{payload}");
        let expected = hmac_sha256(&self.secret, signing_input.as_bytes());
        if !bool::from(signature.as_slice().ct_eq(expected.as_slice())) {
            return Err(AuthRejection::BadSignature);
        }
        let claims: serde_json::Value = decode_json(payload)?;
        let skew = self.max_clock_skew.as_secs() as i64;
        let exp = claims
            .get("exp")
            .and_then(|v| v.as_i64())
            .ok_or(AuthRejection::MissingExp)?;
        if now > exp.saturating_add(skew) {
            return Err(AuthRejection::Expired);
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = nbf.as_i64().ok_or(AuthRejection::Malformed)?;
            if now.saturating_add(skew) < nbf {
                return Err(AuthRejection::NotYetValid);
            }
        }
        if let Some(issuer) = &self.issuer {
            if claims.get("iss").and_then(|v| v.as_str()) != Some(issuer.as_str()) {
                return Err(AuthRejection::WrongIssuer);
            }
        }
        if let Some(audience) = &self.audience {
            let ok = match claims.get("aud") {
                Some(serde_json::Value::String(a)) => a == audience,
                Some(serde_json::Value::Array(list)) => {
                    list.iter().any(|a| a.as_str() == Some(audience.as_str()))
                }
                _ => false,
            };
            if !ok {
                return Err(AuthRejection::WrongAudience);
            }
        }
        Ok(())
    }
}

fn bearer_token(header: &[u8]) -> Option<&[u8]> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, token) = text.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token.as_bytes())
}

fn b64(part: &str) -> Result<Vec<u8>, AuthRejection> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthRejection::Malformed)
}

fn decode_json(part: &str) -> Result<serde_json::Value, AuthRejection> {
    let bytes = b64(part)?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .filter(|v| v.is_object())
        .ok_or(AuthRejection::Malformed)
}

fn read_secret(path: &Path, flag: &str) -> Result<Vec<u8>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    let trimmed = text.trim_ascii();
    if trimmed.is_empty() {
        return Err(format!("{flag} {}: the file is empty", path.display()));
    }
    Ok(trimmed.to_vec())
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    hex.as_bytes()
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair)
                .ok()
                .filter(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))?;
            u8::from_str_radix(pair, 16).ok()
        })
        .collect()
}

/// HMAC-SHA256 over `message` with `key` (the `hmac` crate; any key length is valid).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this arm is unreachable in practice.
        Err(_) => return [0; 32],
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Signs `claims` as an HS256 JWT (for clients and tests).
pub fn sign_hs256(secret: &[u8], claims: &serde_json::Value) -> String {
    let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = enc.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = enc.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let signature = enc.encode(hmac_sha256(secret, signing_input.as_bytes()));
    format!("{signing_input}.{signature}")
}

#[cfg(test)]
#[path = "ws_auth_tests.rs"]
mod tests;

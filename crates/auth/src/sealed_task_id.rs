//! `encrypted_task_id`: a task id the backend sealed to the agent (libsodium `crypto_box_seal`:
//! ephemeral X25519 key, XSalsa20-Poly1305) instead of answering a plain `task_id`.
//!
//! The recipient key is the X25519 form of the agent's Ed25519 key: the secret is the clamped first
//! half of SHA-512 of the Ed25519 seed, the public key the Montgomery form of the Ed25519 public
//! key. On the wire the sealed box is **standard base64 with padding** (RFC 4648 section 4), as
//! Codex decodes it; Tally's collector answers in the same form.

use base64::Engine;
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::error::AuthError;

/// The X25519 secret of an Ed25519 signing key (SHA-512 of the seed, first half, clamped).
pub fn x25519_secret(key: &SigningKey) -> crypto_box::SecretKey {
    let mut scalar = key.to_scalar_bytes();
    scalar[0] &= 248;
    scalar[31] &= 127;
    scalar[31] |= 64;
    crypto_box::SecretKey::from(scalar)
}

/// The X25519 public key of an Ed25519 public key (the Edwards to Montgomery map).
pub fn x25519_public(key: &VerifyingKey) -> crypto_box::PublicKey {
    crypto_box::PublicKey::from(key.to_montgomery().to_bytes())
}

/// Opens an `encrypted_task_id` (standard base64 of a sealed box) with the agent's key; errors
/// never include the ciphertext or the key.
pub fn open_task_id(key: &SigningKey, encrypted_task_id: &str) -> Result<String, AuthError> {
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(encrypted_task_id.trim())
        .map_err(|_| AuthError::AgentIdentity("encrypted_task_id is not standard base64".into()))?;
    let plain = x25519_secret(key).unseal(&sealed).map_err(|_| {
        AuthError::AgentIdentity(
            "encrypted_task_id does not open with this agent's key (sealed to another key?)".into(),
        )
    })?;
    let task = String::from_utf8(plain)
        .map_err(|_| AuthError::AgentIdentity("encrypted_task_id is not UTF-8".into()))?;
    if task.trim().is_empty() {
        return Err(AuthError::AgentIdentity(
            "encrypted_task_id holds an empty task id".into(),
        ));
    }
    Ok(task)
}

#[cfg(test)]
#[path = "sealed_task_id_tests.rs"]
mod tests;

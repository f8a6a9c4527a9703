use super::*;
use crypto_box::aead::OsRng;

fn seal(key: &VerifyingKey, task: &str) -> String {
    let sealed = x25519_public(key)
        .seal(&mut OsRng, task.as_bytes())
        .unwrap_or_else(|e| panic!("seal: {e}"));
    base64::engine::general_purpose::STANDARD.encode(sealed)
}

#[test]
fn x25519_public_key_of_the_verifying_key_matches_the_secret_derived_from_the_seed() {
    let key = SigningKey::from_bytes(&[42u8; 32]);
    assert_eq!(
        x25519_secret(&key).public_key().to_bytes(),
        x25519_public(&key.verifying_key()).to_bytes()
    );
}

#[test]
fn a_task_id_sealed_to_the_agent_opens_with_its_key() {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let sealed = seal(&key.verifying_key(), "task_0123");
    assert_eq!(sealed.len() % 4, 0, "padded standard base64");
    assert_eq!(
        open_task_id(&key, &sealed).ok().as_deref(),
        Some("task_0123")
    );
}

#[test]
fn a_box_sealed_to_another_key_is_an_error_without_the_ciphertext() {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let other = SigningKey::from_bytes(&[8u8; 32]);
    let sealed = seal(&other.verifying_key(), "task_0123");
    let err = open_task_id(&key, &sealed)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("does not open"), "{err}");
    assert!(!err.contains(&sealed[..16]), "{err}");
}

#[test]
fn malformed_encrypted_task_ids_are_errors() {
    let key = SigningKey::from_bytes(&[7u8; 32]);
    for bad in ["%%%", "", "AAAA", "dGFza18w"] {
        assert!(
            matches!(open_task_id(&key, bad), Err(AuthError::AgentIdentity(_))),
            "{bad}"
        );
    }
    // base64url (not the standard alphabet) is refused rather than guessed.
    let sealed = seal(&key.verifying_key(), "task_1")
        .replace('+', "-")
        .replace('/', "_");
    if sealed.contains('-') || sealed.contains('_') {
        assert!(open_task_id(&key, &sealed).is_err());
    }
}

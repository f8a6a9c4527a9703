use super::*;

#[test]
fn round_trips_codex_format_and_keeps_unknown_keys() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let text = r#"{"OPENAI_API_KEY":null,"tokens":{"id_token":"i","access_token":"a","refresh_token":"r","account_id":"acc"},"last_refresh":"2026-11-25T22:20:10Z","auth_mode":"chatgpt"}"#;
    std::fs::write(auth_file(dir.path()), text).unwrap_or_else(|e| panic!("write: {e}"));
    let read_back = read(dir.path()).ok().flatten().unwrap_or_default();
    let tokens = read_back.tokens.clone().unwrap_or_default();
    assert_eq!(tokens.access_token, "a");
    assert_eq!(tokens.account_id.as_deref(), Some("acc"));
    assert_eq!(
        read_back.other.get("auth_mode"),
        Some(&serde_json::json!("chatgpt"))
    );
    write(dir.path(), &read_back).unwrap_or_else(|e| panic!("write: {e}"));
    let again = read(dir.path()).ok().flatten().unwrap_or_default();
    assert_eq!(again, read_back);
}

#[cfg(unix)]
#[test]
fn written_file_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let auth = AuthDotJson {
        openai_api_key: Some("sk-test".into()),
        ..AuthDotJson::default()
    };
    write(dir.path(), &auth).unwrap_or_else(|e| panic!("write: {e}"));
    let mode = std::fs::metadata(auth_file(dir.path()))
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    assert_eq!(mode, 0o600);
    // No temp file is left beside it.
    let entries = std::fs::read_dir(dir.path())
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(entries, 1);
}

#[test]
fn corrupt_file_is_an_error_without_its_content() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    std::fs::write(auth_file(dir.path()), "{\"OPENAI_API_KEY\": sk-secret")
        .unwrap_or_else(|e| panic!("write: {e}"));
    let err = read(dir.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(!err.is_empty());
    assert!(!err.contains("sk-secret"), "{err}");
    // A value of the wrong type: serde_json would quote it.
    std::fs::write(
        auth_file(dir.path()),
        r#"{"tokens": "eyJ-token-secret", "OPENAI_API_KEY": null}"#,
    )
    .unwrap_or_else(|e| panic!("write: {e}"));
    let err = read(dir.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("wrong type") && err.contains("line 1"),
        "{err}"
    );
    assert!(!err.contains("eyJ-token-secret"), "{err}");
}

#[test]
fn debug_output_hides_secrets() {
    let auth = AuthDotJson {
        openai_api_key: Some("sk-secret".into()),
        tokens: Some(TokenData {
            id_token: "id-secret".into(),
            access_token: "access-secret".into(),
            refresh_token: "refresh-secret".into(),
            account_id: Some("acc".into()),
        }),
        ..AuthDotJson::default()
    };
    let debug = format!("{auth:?}");
    for secret in ["sk-secret", "id-secret", "access-secret", "refresh-secret"] {
        assert!(!debug.contains(secret), "{debug}");
    }
}

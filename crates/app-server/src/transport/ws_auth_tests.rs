use super::*;
use serde_json::json;

const NOW: i64 = 1_800_000_000;

fn token_auth(token: &str) -> WsAuth {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("token");
    std::fs::write(&path, format!("{token}\n")).expect("write token");
    WsAuth::capability_token_file(&path).expect("token file")
}

fn jwt_auth(issuer: Option<&str>, audience: Option<&str>) -> WsAuth {
    WsAuth::SignedBearer(SignedBearer {
        secret: b"shared-secret".to_vec(),
        issuer: issuer.map(str::to_string),
        audience: audience.map(str::to_string),
        max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
    })
}

fn bearer(token: &str) -> Vec<u8> {
    format!("Bearer {token}").into_bytes()
}

#[test]
fn hmac_sha256_matches_rfc_4231_case_2() {
    let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn capability_token_accepts_the_token_and_refuses_others() {
    let auth = token_auth("s3cret");
    assert_eq!(auth.check(Some(&bearer("s3cret")), NOW), Ok(()));
    assert_eq!(
        auth.check(Some(b"bearer s3cret"), NOW),
        Ok(()),
        "scheme is case-insensitive"
    );
    assert_eq!(
        auth.check(Some(&bearer("s3cre")), NOW),
        Err(AuthRejection::InvalidToken)
    );
    assert_eq!(auth.check(None, NOW), Err(AuthRejection::Missing));
    assert_eq!(
        auth.check(Some(b"Basic czNjcmV0"), NOW),
        Err(AuthRejection::Missing)
    );
}

#[test]
fn capability_token_sha256_flag_matches_the_token() {
    let hex: String = Sha256::digest(b"s3cret")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let auth = WsAuth::capability_token_sha256(&hex).expect("digest");
    assert_eq!(auth.check(Some(&bearer("s3cret")), NOW), Ok(()));
    assert!(WsAuth::capability_token_sha256("abc").is_err());
}

#[test]
fn empty_token_file_is_refused_naming_the_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("token");
    std::fs::write(&path, "  \n").expect("write");
    let err = WsAuth::capability_token_file(&path).expect_err("empty");
    assert!(err.contains("--ws-token-file"), "{err}");
}

#[test]
fn debug_never_shows_the_secret() {
    let auth = token_auth("s3cret");
    assert_eq!(format!("{auth:?}"), "WsAuth::CapabilityToken");
}

#[test]
fn signed_bearer_accepts_a_valid_token() {
    let auth = jwt_auth(Some("tally-tests"), Some("app-server"));
    let token = sign_hs256(
        b"shared-secret",
        &json!({"exp": NOW + 60, "nbf": NOW - 1, "iss": "tally-tests", "aud": ["x", "app-server"]}),
    );
    assert_eq!(auth.check(Some(&bearer(&token)), NOW), Ok(()));
}

#[test]
fn signed_bearer_checks_signature_time_issuer_and_audience() {
    let auth = jwt_auth(Some("tally-tests"), Some("app-server"));
    let claims = |extra: serde_json::Value| {
        let mut c = json!({"exp": NOW + 60, "iss": "tally-tests", "aud": "app-server"});
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                c.insert(k.clone(), v.clone());
            }
        }
        c
    };
    let check = |secret: &[u8], c: serde_json::Value| {
        auth.check(Some(&bearer(&sign_hs256(secret, &c))), NOW)
    };
    assert_eq!(
        check(b"other-secret", claims(json!({}))),
        Err(AuthRejection::BadSignature)
    );
    assert_eq!(
        check(b"shared-secret", claims(json!({"exp": NOW - 31}))),
        Err(AuthRejection::Expired)
    );
    assert_eq!(
        check(b"shared-secret", claims(json!({"exp": NOW - 10}))),
        Ok(()),
        "within the clock skew"
    );
    assert_eq!(
        check(b"shared-secret", claims(json!({"nbf": NOW + 31}))),
        Err(AuthRejection::NotYetValid)
    );
    assert_eq!(
        check(b"shared-secret", claims(json!({"iss": "someone"}))),
        Err(AuthRejection::WrongIssuer)
    );
    assert_eq!(
        check(b"shared-secret", claims(json!({"aud": "other"}))),
        Err(AuthRejection::WrongAudience)
    );
    assert_eq!(
        check(
            b"shared-secret",
            json!({"iss": "tally-tests", "aud": "app-server"})
        ),
        Err(AuthRejection::MissingExp)
    );
}

#[test]
fn signed_bearer_refuses_alg_none_and_garbage() {
    let auth = jwt_auth(None, None);
    let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let unsigned = format!(
        "{}.{}.",
        enc.encode(br#"{"alg":"none"}"#),
        enc.encode(json!({"exp": NOW + 60}).to_string())
    );
    assert_eq!(
        auth.check(Some(&bearer(&unsigned)), NOW),
        Err(AuthRejection::UnsupportedAlg)
    );
    for junk in ["a.b", "a.b.c.d", "!!!.???.###"] {
        assert_eq!(
            auth.check(Some(&bearer(junk)), NOW),
            Err(AuthRejection::Malformed),
            "{junk}"
        );
    }
}

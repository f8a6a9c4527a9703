use super::*;

#[test]
fn the_login_goes_only_to_chatgpt_hosts_and_the_allowed_ones() {
    let allowed = vec!["collector.corp.example".to_owned(), "127.0.0.1".to_owned()];
    for (url, trusted) in [
        ("https://chatgpt.com/backend-api", true),
        ("https://collector.corp.example", true),
        ("http://127.0.0.1:4546", true),
        ("https://collector.elsewhere.example", false),
        ("http://localhost:4546", false),
        ("https://chatgpt.com.evil.example", false),
        ("not a url", false),
    ] {
        assert_eq!(login_trusted_with(url, &allowed), trusted, "{url}");
    }
    assert!(!login_trusted_with("http://127.0.0.1:4546", &[]));
}

#[test]
fn an_untrusted_collector_gets_its_own_token_or_nothing() {
    let with_token = headers(None, Some("team-token".into()));
    let sent = with_token();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, axum::http::header::AUTHORIZATION);
    assert_eq!(sent[0].1, "Bearer team-token");
    assert!(sent[0].1.is_sensitive());
    let without = headers(None, None);
    assert!(without().is_empty());
}

#[test]
fn gzip_goes_to_tally_collectors_and_not_to_the_chatgpt_backend() {
    assert!(gzip_for("https://collector.example.com"));
    assert!(gzip_for("http://127.0.0.1:4546"));
    assert!(!gzip_for("https://chatgpt.com/backend-api"));
    assert!(!gzip_for("https://chatgpt-staging.com/backend-api/"));
}

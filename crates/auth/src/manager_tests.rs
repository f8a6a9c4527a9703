use super::*;
use crate::agent_identity::AgentIdentityConfig;
use crate::refresh::{RefreshedTokens, TokenRefresher};
use base64::Engine;
use std::sync::atomic::{AtomicUsize, Ordering};

fn home() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

fn config(home: &Path, env_key: Option<&str>) -> AuthConfig {
    AuthConfig {
        home: home.to_path_buf(),
        env_api_key: env_key.map(str::to_owned),
        agent_identity: None,
    }
}

fn manager(config: AuthConfig) -> Arc<AuthManager> {
    AuthManager::load(config).unwrap_or_else(|e| panic!("load: {e}"))
}

fn jwt_expiring_in(secs: i64) -> String {
    let now = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = serde_json::json!({"exp": now + secs, "email": "a@example.com"});
    format!("{}.{}.sig", e.encode(b"{}"), e.encode(payload.to_string()))
}

fn header<'a>(headers: &'a [(HeaderName, HeaderValue)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.as_str() == name)
        .and_then(|(_, v)| v.to_str().ok())
}

#[test]
fn env_api_key_applies_when_auth_json_is_absent() {
    let home = home();
    let m = manager(config(home.path(), Some("sk-env")));
    assert_eq!(m.status().mode, Some(AuthMode::ApiKey));
    assert!(m.status().from_env);
    assert_eq!(
        header(&m.default_headers(), "authorization"),
        Some("Bearer sk-env")
    );
}

#[test]
fn login_api_key_persists_and_logout_removes_it() {
    let home = home();
    let m = manager(config(home.path(), None));
    assert_eq!(m.status().mode, None);
    assert!(m.default_headers().is_empty());
    m.login_api_key("sk-file")
        .unwrap_or_else(|e| panic!("login: {e}"));
    let reloaded = manager(config(home.path(), None));
    assert_eq!(reloaded.status().mode, Some(AuthMode::ApiKey));
    assert!(!reloaded.status().from_env);
    assert_eq!(
        header(&reloaded.bearer_headers(), "authorization"),
        Some("Bearer sk-file")
    );
    assert!(reloaded.logout().unwrap_or(false));
    assert_eq!(reloaded.status().mode, None);
    assert!(!auth_json::auth_file(home.path()).exists());
}

#[test]
fn empty_api_key_is_refused() {
    let home = home();
    let m = manager(config(home.path(), None));
    assert!(matches!(m.login_api_key("  "), Err(AuthError::Invalid(_))));
}

#[test]
fn chatgpt_tokens_from_auth_json_send_bearer_and_account_id() {
    let home = home();
    let file = AuthDotJson {
        tokens: Some(TokenData {
            access_token: "at".into(),
            account_id: Some("account-123".into()),
            ..TokenData::default()
        }),
        ..AuthDotJson::default()
    };
    auth_json::write(home.path(), &file).unwrap_or_else(|e| panic!("write: {e}"));
    let m = manager(config(home.path(), Some("sk-env")));
    assert_eq!(m.status().mode, Some(AuthMode::Chatgpt));
    let headers = m.default_headers();
    assert_eq!(header(&headers, "authorization"), Some("Bearer at"));
    assert_eq!(header(&headers, "chatgpt-account-id"), Some("account-123"));
    assert!(headers
        .iter()
        .all(|(_, v)| v.is_sensitive() || v != "Bearer at"));
}

struct CountingRefresher {
    calls: AtomicUsize,
    fail: bool,
}

#[async_trait::async_trait]
impl TokenRefresher for CountingRefresher {
    async fn refresh(&self, previous: Option<String>) -> Result<RefreshedTokens, AuthError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        // Yield so that concurrent callers pile up on the single-flight lock.
        tokio::task::yield_now().await;
        if self.fail {
            return Err(AuthError::Refresh("client refused".into()));
        }
        Ok(RefreshedTokens {
            access_token: jwt_expiring_in(3600),
            account_id: previous,
            plan_type: Some("pro".into()),
            ..RefreshedTokens::default()
        })
    }
}

#[tokio::test]
async fn expiring_external_tokens_refresh_once_for_concurrent_callers() {
    let home = home();
    let m = manager(config(home.path(), None));
    m.login_external_tokens(&jwt_expiring_in(10), "acc", Some("plus".into()))
        .unwrap_or_else(|e| panic!("login: {e}"));
    let refresher = Arc::new(CountingRefresher {
        calls: AtomicUsize::new(0),
        fail: false,
    });
    m.set_external_refresher(refresher.clone());
    let results = futures_join(&m).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(refresher.calls.load(Ordering::SeqCst), 1);
    assert_eq!(m.status().mode, Some(AuthMode::ChatgptAuthTokens));
    assert_eq!(m.status().plan_type.as_deref(), Some("pro"));
    // Client-owned tokens are never written to disk.
    assert!(!auth_json::auth_file(home.path()).exists());
}

async fn futures_join(m: &Arc<AuthManager>) -> Vec<Result<(), AuthError>> {
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move { m.ensure_fresh().await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(
            t.await
                .unwrap_or_else(|e| Err(AuthError::Refresh(e.to_string()))),
        );
    }
    out
}

#[tokio::test]
async fn fresh_tokens_are_not_refreshed() {
    let home = home();
    let m = manager(config(home.path(), None));
    m.login_external_tokens(&jwt_expiring_in(3600), "acc", None)
        .unwrap_or_else(|e| panic!("login: {e}"));
    let refresher = Arc::new(CountingRefresher {
        calls: AtomicUsize::new(0),
        fail: false,
    });
    m.set_external_refresher(refresher.clone());
    assert!(m.ensure_fresh().await.is_ok());
    assert_eq!(refresher.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn failed_external_refresh_is_an_auth_error() {
    let home = home();
    let m = manager(config(home.path(), None));
    m.login_external_tokens(&jwt_expiring_in(10), "acc", None)
        .unwrap_or_else(|e| panic!("login: {e}"));
    m.set_external_refresher(Arc::new(CountingRefresher {
        calls: AtomicUsize::new(0),
        fail: true,
    }));
    assert!(matches!(m.ensure_fresh().await, Err(AuthError::Refresh(_))));
}

#[tokio::test]
async fn owned_tokens_refresh_at_the_token_endpoint_and_are_saved() {
    use axum::routing::post;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    let new_token = jwt_expiring_in(3600);
    let answer = new_token.clone();
    let app = axum::Router::new().route(
        "/oauth/token",
        post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let answer = answer.clone();
            async move {
                assert_eq!(body["grant_type"], "refresh_token");
                assert_eq!(body["refresh_token"], "rt-old");
                axum::Json(serde_json::json!({"access_token": answer, "refresh_token": "rt-new"}))
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let home = home();
    let file = AuthDotJson {
        tokens: Some(TokenData {
            access_token: jwt_expiring_in(-5),
            refresh_token: "rt-old".into(),
            account_id: Some("acc".into()),
            ..TokenData::default()
        }),
        ..AuthDotJson::default()
    };
    auth_json::write(home.path(), &file).unwrap_or_else(|e| panic!("write: {e}"));
    let mut m = AuthManager::load(config(home.path(), None))
        .ok()
        .and_then(|m| Arc::try_unwrap(m).ok())
        .unwrap_or_else(|| panic!("load"));
    m.oauth = OAuthRefresher::with_url(format!("http://{addr}/oauth/token"));
    m.ensure_fresh()
        .await
        .unwrap_or_else(|e| panic!("refresh: {e}"));
    let saved = auth_json::read(home.path())
        .ok()
        .flatten()
        .unwrap_or_default();
    let tokens = saved.tokens.unwrap_or_default();
    assert_eq!(tokens.access_token, new_token);
    assert_eq!(tokens.refresh_token, "rt-new");
    assert_eq!(tokens.account_id.as_deref(), Some("acc"));
    assert!(saved.last_refresh.is_some());
}

fn identity_config(home: &Path, base: &str) -> AuthConfig {
    AuthConfig {
        home: home.to_path_buf(),
        env_api_key: Some("sk-team".into()),
        agent_identity: Some(AgentIdentityConfig {
            authapi_base_url: base.into(),
            agent_version: "0.1.0".into(),
            agent_harness_id: "tally".into(),
            running_location: "test".into(),
            allowed_hosts: vec!["127.0.0.1".into()],
        }),
    }
}

#[tokio::test]
async fn registration_retries_busy_backends_then_requests_are_signed_per_task() {
    use axum::routing::post;
    let register_calls = Arc::new(AtomicUsize::new(0));
    let calls = register_calls.clone();
    let app = axum::Router::new()
        .route(
            "/api/accounts/v1/agent/register",
            post(
                move |headers: axum::http::HeaderMap,
                      axum::Json(body): axum::Json<serde_json::Value>| {
                    let calls = calls.clone();
                    async move {
                        assert_eq!(headers["authorization"], "Bearer sk-team");
                        assert!(body["agent_public_key"]
                            .as_str()
                            .is_some_and(|k| k.starts_with("ssh-ed25519 ")));
                        // Busy twice, then registered: the client backs off and retries.
                        if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                            return (
                                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                                axum::Json(serde_json::json!({})),
                            );
                        }
                        (
                            axum::http::StatusCode::OK,
                            axum::Json(serde_json::json!({"agent_runtime_id": "rt_1"})),
                        )
                    }
                },
            ),
        )
        .route(
            "/api/accounts/v1/agent/rt_1/task/register",
            post(|headers: axum::http::HeaderMap| async move {
                // Task registration is signed, never bearer.
                assert!(headers.get("authorization").is_none());
                axum::Json(
                    serde_json::json!({"task_id": format!("task_{}", rand::random::<u32>())}),
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let home = home();
    let m = manager(identity_config(
        home.path(),
        &format!("http://{addr}/api/accounts"),
    ));
    // Before registration: bearer.
    assert_eq!(
        header(&m.default_headers(), "authorization"),
        Some("Bearer sk-team")
    );
    m.prepare_agent_identity().await;
    m.prewarm_thread_task("thread-1").await;
    assert_eq!(register_calls.load(Ordering::SeqCst), 3);

    let decode = |headers: Vec<(HeaderName, HeaderValue)>| {
        let value = header(&headers, "authorization")
            .unwrap_or_default()
            .to_owned();
        let b64 = value
            .strip_prefix("AgentAssertion ")
            .unwrap_or_default()
            .to_owned();
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .unwrap_or_default();
        serde_json::from_slice::<serde_json::Value>(&json).unwrap_or_default()
    };
    let background = decode(m.default_headers());
    let thread = decode(m.thread_headers("thread-1"));
    let identity = m.agent_identity().unwrap_or_else(|| panic!("identity"));
    assert_eq!(background["agent_runtime_id"], "rt_1");
    assert_eq!(
        thread["task_id"].as_str(),
        identity.thread_task("thread-1").as_deref()
    );
    assert_ne!(background["task_id"], thread["task_id"]);
    // A thread without its own task yet uses the background task.
    assert_eq!(
        decode(m.thread_headers("thread-2"))["task_id"],
        background["task_id"]
    );
    // Bearer-only helpers never sign.
    assert_eq!(
        header(&m.bearer_headers(), "authorization"),
        Some("Bearer sk-team")
    );

    // Runtime, background task and thread tasks survive a restart (a resumed thread keeps its task).
    let again = manager(identity_config(
        home.path(),
        &format!("http://{addr}/api/accounts"),
    ));
    assert_eq!(
        decode(again.default_headers())["task_id"],
        background["task_id"]
    );
    assert_eq!(
        decode(again.thread_headers("thread-1"))["task_id"],
        thread["task_id"]
    );
    again.prewarm_thread_task("thread-1").await;
    assert_eq!(
        register_calls.load(Ordering::SeqCst),
        3,
        "nothing registered again"
    );
}

#[tokio::test]
async fn unreachable_registration_leaves_requests_on_bearer() {
    let home = home();
    // Port 9 (discard) on loopback: connection refused at once.
    let m = manager(identity_config(
        home.path(),
        "http://127.0.0.1:9/api/accounts",
    ));
    tokio::time::pause();
    m.prepare_agent_identity().await;
    assert_eq!(
        header(&m.default_headers(), "authorization"),
        Some("Bearer sk-team")
    );
    assert_eq!(
        header(&m.thread_headers("t"), "authorization"),
        Some("Bearer sk-team")
    );
}

#[tokio::test]
async fn synchronous_callers_start_one_background_refresh() {
    let home = home();
    let m = manager(config(home.path(), None));
    m.login_external_tokens(&jwt_expiring_in(10), "acc", None)
        .unwrap_or_else(|e| panic!("login: {e}"));
    let refresher = Arc::new(CountingRefresher {
        calls: AtomicUsize::new(0),
        fail: false,
    });
    m.set_external_refresher(refresher.clone());
    m.spawn_refresh_if_expiring();
    m.spawn_refresh_if_expiring();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while refresher.calls.load(Ordering::SeqCst) == 0
        || expires_soon(
            &m.bearer_token().map(|t| t.0).unwrap_or_default(),
            SystemTime::now(),
        )
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "refreshed in the background"
        );
        tokio::task::yield_now().await;
    }
    // Let the second spawned task observe the fresh token and do nothing.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(refresher.calls.load(Ordering::SeqCst), 1);
}

/// A client refresher that answers only when released.
struct HeldRefresher {
    entered: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl TokenRefresher for HeldRefresher {
    async fn refresh(&self, previous: Option<String>) -> Result<RefreshedTokens, AuthError> {
        self.entered.notify_one();
        self.release.notified().await;
        Ok(RefreshedTokens {
            access_token: jwt_expiring_in(3600),
            account_id: previous,
            ..RefreshedTokens::default()
        })
    }
}

#[tokio::test]
async fn a_refresh_that_ends_after_a_logout_or_another_login_does_not_bring_the_login_back() {
    for then in ["logout", "api key"] {
        let home = home();
        let m = manager(config(home.path(), None));
        m.login_external_tokens(&jwt_expiring_in(10), "acc", None)
            .unwrap_or_else(|e| panic!("login: {e}"));
        let refresher = Arc::new(HeldRefresher {
            entered: tokio::sync::Notify::new(),
            release: tokio::sync::Notify::new(),
        });
        m.set_external_refresher(refresher.clone());
        let refreshing = tokio::spawn({
            let m = m.clone();
            async move { m.ensure_fresh().await }
        });
        refresher.entered.notified().await;
        if then == "logout" {
            m.logout().unwrap_or_else(|e| panic!("logout: {e}"));
        } else {
            m.login_api_key("sk-next")
                .unwrap_or_else(|e| panic!("login: {e}"));
        }
        refresher.release.notify_one();
        let _ = refreshing.await;
        let expected = (then == "api key").then_some(AuthMode::ApiKey);
        assert_eq!(m.status().mode, expected, "after {then}");
        let header = header(&m.bearer_headers(), "authorization").map(str::to_owned);
        let expected = (then == "api key").then(|| "Bearer sk-next".to_owned());
        assert_eq!(header, expected, "after {then}");
    }
}

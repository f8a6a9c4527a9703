//! Helpers shared by the agent-identity tests: a Tally collector on a loopback port and an
//! `AuthManager` registered with it.

#![allow(dead_code)]

use base64::Engine;
use http::{HeaderName, HeaderValue};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use tally_auth::{AgentIdentityConfig, AuthConfig, AuthManager};
use tally_collector::config::Scope;
use tally_collector::{CollectorConfig, CollectorHandle, TokenConfig, Unauthenticated};

pub const TEAM_TOKEN: &str = "team-token-5d1e";
/// A second team's token (account `team-b`), for a login that changes account.
pub const OTHER_TEAM_TOKEN: &str = "team-b-token-77c0";

pub async fn collector_on(
    listener: tokio::net::TcpListener,
    dir: &Path,
    encrypt_task_ids: bool,
) -> CollectorHandle {
    let mut config = CollectorConfig::embedded(dir.join("collector.sqlite"));
    config.allow_unauthenticated = Unauthenticated::Deny;
    config.agent_identity.encrypt_task_ids = encrypt_task_ids;
    config.tokens = [(TEAM_TOKEN, "team-a"), (OTHER_TEAM_TOKEN, "team-b")]
        .into_iter()
        .map(|(token, account)| TokenConfig {
            token: Some(token.into()),
            token_sha256: None,
            account: Some(account.into()),
            label: account.into(),
            scopes: vec![Scope::Ingest],
        })
        .collect();
    tally_collector::start(config, listener)
        .await
        .unwrap_or_else(|e| panic!("collector: {e}"))
}

pub async fn collector(dir: &Path, encrypt_task_ids: bool) -> CollectorHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    collector_on(listener, dir, encrypt_task_ids).await
}

pub fn manager(home: &Path, collector: &CollectorHandle) -> Arc<AuthManager> {
    AuthManager::load(AuthConfig {
        home: home.to_path_buf(),
        env_api_key: Some(TEAM_TOKEN.into()),
        agent_identity: Some(AgentIdentityConfig {
            authapi_base_url: format!("{}/api/accounts", collector.base_url()),
            agent_version: "0.1.0".into(),
            agent_harness_id: "tally".into(),
            running_location: "test".into(),
            allowed_hosts: vec!["127.0.0.1".into()],
        }),
    })
    .unwrap_or_else(|e| panic!("load: {e}"))
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

pub fn authorization(headers: &[(HeaderName, HeaderValue)]) -> String {
    headers
        .iter()
        .find(|(n, _)| n == http::header::AUTHORIZATION)
        .and_then(|(_, v)| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

pub fn task_of(headers: &[(HeaderName, HeaderValue)]) -> String {
    let value = authorization(headers);
    let b64 = value.strip_prefix("AgentAssertion ").unwrap_or_default();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .unwrap_or_default();
    serde_json::from_slice::<Value>(&json).unwrap_or_default()["task_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Posts one analytics batch with `headers`; the status and the error code.
pub async fn ingest(
    collector: &CollectorHandle,
    headers: Vec<(HeaderName, HeaderValue)>,
) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!(
            "{}/codex/analytics-events/events",
            collector.base_url()
        ))
        .timeout(std::time::Duration::from_secs(10))
        .json(
            &json!({"events": [{"event_type": "codex_thread_initialized", "event_params": {
            "thread_id": "t1", "product_client_id": "tests", "model": "m", "ephemeral": false,
            "initialization_mode": "new", "created_at": 1}}]}),
        );
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("ingest: {e}"));
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    let code = tally_auth::registration::rejection_code(&body).unwrap_or_default();
    (status, code)
}

/// Captured log output: the one global subscriber of a test binary writes here.
#[derive(Clone, Default)]
pub struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// The logs of every test of this binary, at every level (installed on first use; lines
    /// name their runtime).
    pub fn global() -> &'static Logs {
        static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = Logs::default();
            let writer = logs.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::TRACE)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .unwrap_or_else(|e| panic!("subscriber: {e}"));
            logs
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// Thread tasks kept in memory, as an app-server's rollout store keeps them on disk.
#[derive(Default)]
pub struct MemoryStore(std::sync::Mutex<std::collections::HashMap<(String, String), String>>);

impl tally_auth::ThreadTaskStore for MemoryStore {
    fn load(&self, agent_runtime_id: &str, thread_id: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(agent_runtime_id.to_owned(), thread_id.to_owned()))
            .cloned()
    }

    fn save(
        &self,
        agent_runtime_id: &str,
        thread_id: &str,
        task_id: &str,
    ) -> Result<(), tally_auth::AuthError> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(
            (agent_runtime_id.to_owned(), thread_id.to_owned()),
            task_id.to_owned(),
        );
        Ok(())
    }
}

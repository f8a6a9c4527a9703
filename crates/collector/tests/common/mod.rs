//! Helpers shared by the HTTP tests: a collector on an ephemeral loopback port with its own store.

#![allow(dead_code)]

pub mod agent;

use std::sync::Arc;

use serde_json::Value;
use tally_collector::config::{Scope, TokenConfig};
use tally_collector::{start, CollectorConfig, CollectorHandle, EventStore, ReportQuery};
use tokio::net::TcpListener;

pub const INGEST: &str = "/codex/analytics-events/events";
pub const TOKEN: &str = "test-ingest-token";
pub const READ_TOKEN: &str = "test-read-token";

pub struct Running {
    pub handle: CollectorHandle,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

/// Config with a token (account `team-a`), anonymous ingest from loopback, SQLite in `dir`.
pub fn config(dir: &tempfile::TempDir) -> CollectorConfig {
    let mut config = CollectorConfig::embedded(dir.path().join("analytics.sqlite3"));
    config.tokens = vec![
        TokenConfig {
            token: Some(TOKEN.into()),
            token_sha256: None,
            account: Some("team-a".into()),
            label: "tests".into(),
            scopes: vec![Scope::Ingest],
        },
        TokenConfig {
            token: Some(READ_TOKEN.into()),
            token_sha256: None,
            account: None,
            label: "reader".into(),
            scopes: vec![Scope::Read],
        },
    ];
    config
}

pub async fn start_with(config: CollectorConfig, dir: tempfile::TempDir) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = start(config, listener).await.unwrap();
    Running {
        handle,
        dir,
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .unwrap(),
    }
}

pub async fn running() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir);
    start_with(config, dir).await
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    /// The body of `GET path` (any status) as text.
    pub async fn get_text(&self, path: &str) -> String {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        response.text().await.unwrap()
    }

    pub async fn post(&self, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(INGEST))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub fn store(&self) -> Arc<dyn EventStore> {
        self.handle.store()
    }

    pub async fn report(&self) -> tally_collector::Report {
        self.store()
            .report(ReportQuery::last(std::time::Duration::from_secs(
                30 * 86_400,
            )))
            .await
            .unwrap()
    }
}

/// Unix seconds an hour ago (events must fall inside the report range).
pub fn an_hour_ago_s() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(now).unwrap() - 3600
}

/// One minute past the start of the hour before last: a short session starting here stays inside
/// one hourly bucket whatever the wall clock says.
pub fn aligned_start_s() -> i64 {
    (an_hour_ago_s() - 3600) / 3600 * 3600 + 60
}

/// Adds a distinct `event_id` to every wire event.
pub fn with_ids(events: Vec<Value>, prefix: &str) -> Vec<Value> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e["event_id"] = Value::from(format!("{prefix}-{i}"));
            e
        })
        .collect()
}

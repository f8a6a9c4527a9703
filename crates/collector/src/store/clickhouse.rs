//! The fleet engine: one ClickHouse shared by many collectors, spoken to over its HTTP interface.
//! Every table is a `ReplacingMergeTree` ordered by `(account, event_id)`, so an event written twice
//! (a retry through another collector) collapses to one row; reads use `FINAL`.
//!
//! Works with ClickHouse 18.16 (Debian's package) and current releases: rows go in as
//! `JSONEachRow` (data never appears in SQL text), results come back as `JSONEachRow`, and no type
//! newer than 18.16 (`DateTime64`, `JSON`, `LowCardinality`) or format (`RowBinaryWithNamesAndTypes`)
//! is used. 18.16 has no server-side query parameters, so the few literals in queries (times,
//! client, account, ids) go through [`sql_string`], the same client-side binding the `clickhouse`
//! crate does.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use super::{EventStore, IngestBatch, InsertOutcome, StoreError};
use crate::config::ClickHouseConfig;
use crate::event::{IncomingEvent, RejectedEvent};
use crate::family::{Kind, TypedValue, FAMILIES};
use crate::report::{Report, ReportQuery};

/// Schema version this collector writes.
pub(crate) const SCHEMA_VERSION: i64 = 1;
/// Ids checked per "already stored?" query (keeps the SQL under `max_query_size`).
const ID_CHUNK: usize = 1000;

/// ClickHouse-backed [`EventStore`].
#[derive(Clone)]
pub struct ClickHouseStore {
    http: reqwest::Client,
    url: String,
    database: String,
    user: String,
    password: String,
}

impl std::fmt::Debug for ClickHouseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseStore")
            .field("url", &self.url)
            .field("database", &self.database)
            .finish()
    }
}

/// A ClickHouse string literal: quoted, with `\`, `'` and control characters escaped.
pub fn sql_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn ch_err(context: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Worker(format!("clickhouse {context}: {e}"))
}

impl ClickHouseStore {
    /// Connects, creates the database and tables if missing, and checks the schema version.
    pub async fn open(config: &ClickHouseConfig) -> Result<Self, StoreError> {
        let store = Self::client(config)?;
        store.migrate().await?;
        Ok(store)
    }

    /// A client of the database `config` names, without touching it (its tables are made by
    /// [`ClickHouseStore::open`]).
    pub(crate) fn client(config: &ClickHouseConfig) -> Result<Self, StoreError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .map_err(|e| ch_err("client", e))?;
        Ok(ClickHouseStore {
            http,
            url: config.url.trim_end_matches('/').to_owned(),
            database: config.database.clone(),
            user: config.user.clone(),
            password: config.password.clone(),
        })
    }

    /// The database name (validated to `[A-Za-z0-9_]`, so it can be spliced into SQL).
    pub fn database(&self) -> &str {
        &self.database
    }

    async fn post(&self, query: Option<&str>, body: String) -> Result<String, StoreError> {
        let mut request = self.http.post(&self.url).body(body);
        if let Some(q) = query {
            request = request.query(&[("query", q)]);
        }
        if !self.user.is_empty() {
            request = request.basic_auth(&self.user, Some(&self.password));
        }
        let response = request.send().await.map_err(|e| ch_err("request", e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| ch_err("response", e))?;
        if !status.is_success() {
            let first_line = text.lines().next().unwrap_or("").trim();
            return Err(ch_err(&format!("HTTP {status}"), first_line));
        }
        Ok(text)
    }

    /// Runs a statement that returns nothing.
    pub(crate) async fn execute(&self, sql: &str) -> Result<(), StoreError> {
        self.post(None, sql.to_owned()).await.map(|_| ())
    }

    /// Runs a query and returns its rows as JSON objects.
    pub(crate) async fn rows(&self, sql: &str) -> Result<Vec<Map<String, Value>>, StoreError> {
        let text = self.post(None, format!("{sql} FORMAT JSONEachRow")).await?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| match serde_json::from_str::<Value>(l) {
                Ok(Value::Object(m)) => Ok(m),
                Ok(_) => Err(ch_err("result", "row is not an object")),
                Err(e) => Err(ch_err("result", e)),
            })
            .collect()
    }

    pub(crate) async fn insert_rows(&self, table: &str, rows: &[Value]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut body = String::with_capacity(rows.len() * 512);
        for row in rows {
            body.push_str(&row.to_string());
            body.push('\n');
        }
        let query = format!("INSERT INTO {}.{table} FORMAT JSONEachRow", self.database);
        self.post(Some(&query), body).await.map(|_| ())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let db = &self.database;
        self.execute(&format!("CREATE DATABASE IF NOT EXISTS {db}"))
            .await?;
        self.execute(&format!(
            "CREATE TABLE IF NOT EXISTS {db}.schema_version (version Int64, applied_at_ms Int64) \
             ENGINE = ReplacingMergeTree() ORDER BY version"
        ))
        .await?;
        let current = self
            .rows(&format!(
                "SELECT toInt64(max(version)) AS v FROM {db}.schema_version"
            ))
            .await?
            .first()
            .and_then(|r| r.get("v").and_then(as_i64))
            .unwrap_or(0);
        if current > SCHEMA_VERSION {
            return Err(StoreError::Schema(format!(
                "ClickHouse schema version {current} is newer than this collector's \
                 {SCHEMA_VERSION}; upgrade the collector"
            )));
        }
        for statement in schema_v1(db) {
            self.execute(&statement).await?;
        }
        if current < SCHEMA_VERSION {
            self.insert_rows(
                "schema_version",
                &[serde_json::json!({"version": SCHEMA_VERSION, "applied_at_ms": crate::time::now_ms()})],
            )
            .await?;
        }
        Ok(())
    }

    /// Ids of `ids` already stored for `account`.
    async fn existing_ids(
        &self,
        account: &str,
        ids: &[&str],
    ) -> Result<HashSet<String>, StoreError> {
        let mut found = HashSet::new();
        for chunk in ids.chunks(ID_CHUNK) {
            let list: Vec<String> = chunk.iter().map(|id| sql_string(id)).collect();
            let rows = self
                .rows(&format!(
                    "SELECT event_id FROM {}.events FINAL WHERE account = {} AND event_id IN ({})",
                    self.database,
                    sql_string(account),
                    list.join(", ")
                ))
                .await?;
            for row in rows {
                if let Some(Value::String(id)) = row.get("event_id") {
                    found.insert(id.clone());
                }
            }
        }
        Ok(found)
    }

    /// Writes a group of batches with one insert per table (ClickHouse wants few, large
    /// inserts), returning each batch's outcome as if it had been written alone, in order.
    async fn write_group(&self, batches: &[IngestBatch]) -> Result<Vec<InsertOutcome>, StoreError> {
        let mut outcomes = vec![InsertOutcome::default(); batches.len()];
        // Duplicates inside the group (first occurrence wins), then against what is stored.
        let mut seen = HashSet::new();
        let mut fresh: Vec<(usize, &IncomingEvent)> = Vec::new();
        for (i, batch) in batches.iter().enumerate() {
            for event in &batch.events {
                if seen.insert((&*event.account, event.event_id.as_str())) {
                    fresh.push((i, event));
                } else if let Some(o) = outcomes.get_mut(i) {
                    o.duplicates += 1;
                }
            }
        }
        let mut by_account: HashMap<&str, Vec<&str>> = HashMap::new();
        for (_, e) in &fresh {
            by_account
                .entry(&*e.account)
                .or_default()
                .push(e.event_id.as_str());
        }
        let mut stored: HashSet<(String, String)> = HashSet::new();
        for (account, ids) in by_account {
            for id in self.existing_ids(account, &ids).await? {
                stored.insert((account.to_owned(), id));
            }
        }

        // Typed rows first, the raw `events` rows last: a group that fails half-way is not seen
        // as stored, so its retry writes everything again (and the merge trees collapse repeats).
        let mut typed: HashMap<&'static str, Vec<Value>> = HashMap::new();
        let mut raw = Vec::with_capacity(fresh.len());
        for (i, event) in fresh {
            let Some(outcome) = outcomes.get_mut(i) else {
                continue;
            };
            if stored.contains(&(
                event.account.to_string(),
                event.event_id.as_str().to_owned(),
            )) {
                outcome.duplicates += 1;
                continue;
            }
            outcome.inserted += 1;
            match event.family() {
                Some(family) => typed
                    .entry(family.table)
                    .or_default()
                    .push(typed_row(family, event)),
                None => outcome.untyped += 1,
            }
            raw.push(serde_json::json!({
                "account": event.account,
                "event_id": event.event_id.as_str(),
                "id_source": event.id_source.as_str(),
                "event_type": event.event_type,
                "received_at_ms": event.received_at_ms,
                "ts_ms": event.ts_ms,
                "client": event.client,
                "params": event.params_json,
            }));
        }
        let mut rejects = Vec::new();
        for (i, batch) in batches.iter().enumerate() {
            if let Some(o) = outcomes.get_mut(i) {
                o.quarantined = batch.rejects.len();
            }
            rejects.extend(batch.rejects.iter().map(reject_row));
        }
        let mut inserts: Vec<_> = FAMILIES
            .iter()
            .filter_map(|f| {
                typed
                    .get(f.table)
                    .map(|rows| self.insert_rows(f.table, rows))
            })
            .collect();
        inserts.push(self.insert_rows("rejects", &rejects));
        futures::future::try_join_all(inserts).await?;
        self.insert_rows("events", &raw).await?;
        Ok(outcomes)
    }
}

fn typed_row(family: &crate::family::Family, event: &IncomingEvent) -> Value {
    let mut row = Map::new();
    row.insert("account".into(), Value::from(&*event.account));
    row.insert("event_id".into(), Value::from(event.event_id.as_str()));
    row.insert("ts_ms".into(), Value::from(event.ts_ms));
    row.insert("client".into(), Value::from(&*event.client));
    row.insert("event_type".into(), Value::from(&*event.event_type));
    for (i, column) in family.columns.iter().enumerate() {
        let value = match event.typed_value(i) {
            TypedValue::Text(s) => Value::from(s),
            TypedValue::Int(i) => Value::from(i),
            TypedValue::Null => Value::Null,
        };
        row.insert(column.name.into(), value);
    }
    Value::Object(row)
}

fn reject_row(reject: &RejectedEvent) -> Value {
    serde_json::json!({
        "reject_key": super::sqlite::reject_key(reject),
        "received_at_ms": reject.received_at_ms,
        "account": reject.account,
        "batch_index": i64::try_from(reject.index).unwrap_or(i64::MAX),
        "event_type": reject.event_type,
        "field": reject.field,
        "reason": reject.reason,
        "raw": reject.raw,
    })
}

/// The version-1 schema: `CREATE ... IF NOT EXISTS`, so collectors starting together agree.
fn schema_v1(db: &str) -> Vec<String> {
    let mut statements = vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.events (account String, event_id String, \
             id_source String, event_type String, received_at_ms Int64, ts_ms Int64, \
             client String, params String) \
             ENGINE = ReplacingMergeTree() ORDER BY (account, event_id)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.rejects (reject_key String, received_at_ms Int64, \
             account String, batch_index Int64, event_type Nullable(String), field String, \
             reason String, raw String) ENGINE = ReplacingMergeTree() ORDER BY reject_key"
        ),
    ];
    statements.extend(super::clickhouse_identities::schema(db));
    for family in FAMILIES {
        let columns: Vec<String> = family
            .columns
            .iter()
            .map(|c| {
                let ty = match c.kind {
                    Kind::Text => "Nullable(String)",
                    Kind::Int => "Nullable(Int64)",
                    Kind::Bool => "Nullable(UInt8)",
                };
                format!("{} {ty}", c.name)
            })
            .collect();
        statements.push(format!(
            "CREATE TABLE IF NOT EXISTS {db}.{} (account String, event_id String, ts_ms Int64, \
             client String, event_type String, {}) \
             ENGINE = ReplacingMergeTree() ORDER BY (account, event_id)",
            family.table,
            columns.join(", ")
        ));
    }
    statements
}

/// An integer from a JSONEachRow cell (64-bit integers arrive quoted by default).
pub(crate) fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

impl EventStore for ClickHouseStore {
    fn insert_batch(&self, batch: IngestBatch) -> BoxFuture<'_, Result<InsertOutcome, StoreError>> {
        Box::pin(async move {
            let outcomes = self.write_group(std::slice::from_ref(&batch)).await?;
            Ok(outcomes.into_iter().next().unwrap_or_default())
        })
    }

    fn insert_batches(
        &self,
        batches: Vec<IngestBatch>,
    ) -> BoxFuture<'_, Vec<Result<InsertOutcome, StoreError>>> {
        Box::pin(async move {
            match self.write_group(&batches).await {
                Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
                // One failed group fails each of its batches; their senders retry, and dedup
                // makes the retry safe.
                Err(e) => {
                    let message = e.to_string();
                    batches
                        .iter()
                        .map(|_| Err(StoreError::Worker(message.clone())))
                        .collect()
                }
            }
        })
    }

    fn delete_before(
        &self,
        _cutoff_ms: i64,
        _budget: std::time::Duration,
    ) -> BoxFuture<'_, Result<super::Swept, StoreError>> {
        // A mutation would rewrite every part of every table at each sweep (they are ordered by
        // id, not time); config validation refuses `retention_days` here.
        Box::pin(async {
            Err(StoreError::Unsupported(
                "retention on ClickHouse is the server's own TTL (see the collector README)",
            ))
        })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move { self.rows("SELECT 1 AS one").await.map(|_| ()) })
    }

    fn report(&self, query: ReportQuery) -> BoxFuture<'_, Result<Report, StoreError>> {
        Box::pin(async move { super::clickhouse_report::build(self, &query).await })
    }

    fn engine(&self) -> &'static str {
        "clickhouse"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_cannot_escape_their_quotes() {
        assert_eq!(sql_string("plain"), "'plain'");
        assert_eq!(sql_string("a'b"), "'a\\'b'");
        assert_eq!(
            sql_string("a\\'); DROP TABLE x; --"),
            "'a\\\\\\'); DROP TABLE x; --'"
        );
        assert_eq!(sql_string("line\nbreak\0"), "'line\\nbreak\\0'");
    }

    #[test]
    fn quoted_and_plain_integers_are_read() {
        assert_eq!(as_i64(&Value::from("42")), Some(42));
        assert_eq!(as_i64(&Value::from(7)), Some(7));
        assert_eq!(as_i64(&Value::Null), None);
    }
}

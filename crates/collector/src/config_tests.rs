use super::*;

#[derive(Deserialize)]
struct File {
    collector: CollectorConfig,
}

fn parse(text: &str) -> Result<CollectorConfig, String> {
    toml::from_str::<File>(text)
        .map(|f| f.collector)
        .map_err(|e| e.to_string())
}

#[test]
fn a_full_collector_table_parses() {
    let config = parse(
        r#"
        [collector]
        listen = "0.0.0.0:9000"
        path_prefixes = ["/backend-api", "/api"]
        max_body_bytes = 1048576
        allow_unauthenticated = false
        queue_capacity = 8
        store = "sqlite"
        [collector.sqlite]
        path = "/var/lib/tally/analytics.sqlite3"
        synchronous = "normal"
        [[collector.tokens]]
        token_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        account = "team-a"
        label = "laptops"
        [[collector.tokens]]
        token = "dashboard-secret"
        scopes = ["read"]
        "#,
    )
    .unwrap();
    assert_eq!(config.listen, "0.0.0.0:9000".parse().unwrap());
    assert_eq!(config.allow_unauthenticated, Unauthenticated::Deny);
    assert_eq!(config.sqlite.synchronous, Synchronous::Normal);
    assert_eq!(config.tokens.len(), 2);
    assert_eq!(config.tokens[0].scopes, vec![Scope::Ingest]);
    assert_eq!(config.tokens[1].scopes, vec![Scope::Read]);
    assert_eq!(config.max_decompressed_bytes, 32 * 1024 * 1024);
    config.validate().unwrap();
}

#[test]
fn defaults_suit_tally_serve() {
    let config = CollectorConfig::embedded("/tmp/x/analytics.sqlite3");
    assert!(config.listen.ip().is_loopback());
    assert_eq!(config.allow_unauthenticated, Unauthenticated::Loopback);
    assert_eq!(config.max_body_bytes, 5 * 1024 * 1024);
    assert_eq!(config.store, StoreKind::Sqlite);
    assert_eq!(
        config.sqlite.path,
        std::path::PathBuf::from("/tmp/x/analytics.sqlite3")
    );
    config.validate().unwrap();
    assert_eq!(parse("[collector]\n").unwrap(), CollectorConfig::default());
}

#[test]
fn allow_unauthenticated_accepts_bools_and_names() {
    let get = |v: &str| parse(&format!("[collector]\nallow_unauthenticated = {v}\n"));
    assert_eq!(
        get("true").unwrap().allow_unauthenticated,
        Unauthenticated::Loopback
    );
    assert_eq!(
        get("\"any\"").unwrap().allow_unauthenticated,
        Unauthenticated::Any
    );
    assert_eq!(
        get("\"loopback\"").unwrap().allow_unauthenticated,
        Unauthenticated::Loopback
    );
    let err = get("\"sometimes\"").unwrap_err();
    assert!(err.contains("allow_unauthenticated"), "{err}");
}

#[test]
fn unknown_keys_and_engines_are_refused() {
    assert!(parse("[collector]\nmax_body = 5\n")
        .unwrap_err()
        .contains("max_body"));
    assert!(parse("[collector]\nstore = \"postgres\"\n").is_err());
    let ch = parse(
        "[collector]\nstore = \"clickhouse\"\n[collector.clickhouse]\ndatabase = \"x;drop\"\n",
    )
    .unwrap();
    assert_eq!(ch.store, StoreKind::Clickhouse);
    assert!(ch
        .validate()
        .unwrap_err()
        .to_string()
        .starts_with("collector.clickhouse.database:"));
}

#[test]
fn validation_names_the_key() {
    let mut config = CollectorConfig::default();
    config.tokens.push(TokenConfig {
        token: None,
        token_sha256: Some("abc".into()),
        account: None,
        label: String::new(),
        scopes: vec![Scope::Ingest],
    });
    assert_eq!(
        config.validate().unwrap_err().to_string(),
        "collector.tokens[0].token_sha256: must be 64 hexadecimal characters (sha256 of the token)"
    );
    let config = CollectorConfig {
        path_prefixes: vec!["backend-api/".into()],
        ..CollectorConfig::default()
    };
    assert!(config
        .validate()
        .unwrap_err()
        .to_string()
        .starts_with("collector.path_prefixes[0]:"));
    let config = CollectorConfig {
        queue_capacity: 0,
        ..CollectorConfig::default()
    };
    assert!(config
        .validate()
        .unwrap_err()
        .to_string()
        .starts_with("collector.queue_capacity:"));
    for page_size in [0, 1000, 131_072] {
        let mut config = CollectorConfig::default();
        config.sqlite.page_size = page_size;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("collector.sqlite.page_size:"));
    }
}

#[test]
fn agent_identity_table_parses_and_its_rate_limit_must_be_positive() {
    let config = parse(
        r#"
        [collector.agent_identity]
        prefix = "/authapi/api/accounts"
        max_requests_per_minute = 30
        encrypt_task_ids = true
        max_runtimes_per_account = 50
        max_tasks_per_runtime = 500
        "#,
    )
    .unwrap();
    assert!(config.agent_identity.encrypt_task_ids);
    assert_eq!(config.agent_identity.max_requests_per_minute, 30);
    assert_eq!(config.agent_identity.max_runtimes_per_account, 50);
    assert_eq!(config.agent_identity.max_tasks_per_runtime, 500);
    let mut no_tasks = config.clone();
    no_tasks.agent_identity.max_tasks_per_runtime = 0;
    assert!(no_tasks
        .validate()
        .unwrap_err()
        .to_string()
        .starts_with("collector.agent_identity.max_tasks_per_runtime:"));
    assert!(!CollectorConfig::default().agent_identity.encrypt_task_ids);
    let mut config = CollectorConfig::default();
    config.agent_identity.max_requests_per_minute = 0;
    assert!(config
        .validate()
        .unwrap_err()
        .to_string()
        .starts_with("collector.agent_identity.max_requests_per_minute:"));
}

#[test]
fn the_old_registry_path_is_refused_with_where_registrations_are_kept_now() {
    let toml = r#"
        [collector.sqlite]
        path = "/var/lib/tally/collector.sqlite3"
        [collector.agent_identity]
        registry_path = "/etc/tally/ids.json"
        "#;
    let refused = |text: &str| match parse(text).map(|c| c.validate()) {
        Ok(Err(e)) => e.to_string(),
        other => panic!("not refused: {other:?}"),
    };
    let message = refused(toml);
    assert!(
        message.starts_with("collector.agent_identity.registry_path: is no longer used")
            && message.contains("move /etc/tally/ids.json there")
            && message.contains("/var/lib/tally/collector.identities.json"),
        "{message}"
    );
    let clickhouse = toml.replace(
        "[collector.sqlite]",
        "[collector]\n        store = \"clickhouse\"\n        [collector.sqlite]",
    );
    let message = refused(&clickhouse);
    assert!(
        message.contains("shared ClickHouse tables") && message.contains("remove this key"),
        "{message}"
    );
}

#[test]
fn retention_days_is_read_and_refused_for_clickhouse() {
    let config = parse("[collector]\nretention_days = 90\n").unwrap();
    assert_eq!(config.retention_days, 90);
    assert!(config.validate().is_ok());
    assert_eq!(CollectorConfig::default().retention_days, 0);
    let config = parse("[collector]\nretention_days = 90\nstore = \"clickhouse\"\n").unwrap();
    let message = config.validate().unwrap_err().to_string();
    assert!(
        message.starts_with("collector.retention_days: applies to SQLite only")
            && message.contains("TTL"),
        "{message}"
    );
}

#[test]
fn numbers_that_would_overflow_or_exhaust_memory_are_refused_naming_the_key() {
    // A huge window panicked at the first signed request (`at + window` on SystemTime); the
    // others panicked at start (a semaphore, SQLite's busy timeout) or let one peer's
    // Content-Length reserve that much memory.
    let refused = |change: fn(&mut CollectorConfig)| {
        let mut config = CollectorConfig::default();
        change(&mut config);
        config.validate().unwrap_err().to_string()
    };
    let message = refused(|c| c.agent_identity.window_seconds = u64::MAX);
    assert_eq!(
        message,
        "collector.agent_identity.window_seconds: must be from 1 to 86400 (a day)"
    );
    assert!(refused(|c| c.agent_identity.window_seconds = 86_401)
        .starts_with("collector.agent_identity.window_seconds:"));
    assert!(refused(|c| c.queue_capacity = usize::MAX).starts_with("collector.queue_capacity:"));
    assert!(refused(|c| c.max_inflight_requests = usize::MAX)
        .starts_with("collector.max_inflight_requests:"));
    assert!(refused(|c| {
        c.max_body_bytes = usize::MAX;
        c.max_decompressed_bytes = usize::MAX;
    })
    .starts_with("collector.max_body_bytes:"));
    assert!(refused(|c| c.max_decompressed_bytes = usize::MAX)
        .starts_with("collector.max_decompressed_bytes:"));
    assert!(refused(|c| c.sqlite.busy_timeout_ms = u64::MAX)
        .starts_with("collector.sqlite.busy_timeout_ms:"));

    let mut config = CollectorConfig::default();
    config.agent_identity.window_seconds = 86_400;
    config.queue_capacity = 1_000_000;
    config.max_inflight_requests = 1_000_000;
    config.max_body_bytes = 1 << 30;
    config.max_decompressed_bytes = 4 << 30;
    config.sqlite.busy_timeout_ms = 3_600_000;
    config.validate().unwrap();
}

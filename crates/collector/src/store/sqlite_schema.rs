//! SQLite schema migrations, applied in order inside a transaction each and recorded in
//! `schema_version`. A migration is never edited once released: add a new one.

/// `(version, SQL)` in order.
pub(crate) const MIGRATIONS: &[(i64, &str)] = &[(1, MIGRATION_1)];

/// Version 1: the raw table, the quarantine and one typed table per event family.
const MIGRATION_1: &str = r#"
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    event_id TEXT NOT NULL,
    id_source TEXT NOT NULL,
    event_type TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL,
    client TEXT NOT NULL,
    params TEXT NOT NULL,
    UNIQUE (account, event_id)
);
CREATE INDEX events_ts ON events(ts_ms);
CREATE INDEX events_type_ts ON events(event_type, ts_ms);

CREATE TABLE rejects (
    id INTEGER PRIMARY KEY,
    reject_key TEXT NOT NULL UNIQUE,
    received_at_ms INTEGER NOT NULL,
    account TEXT NOT NULL,
    batch_index INTEGER NOT NULL,
    event_type TEXT,
    field TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL
);
CREATE INDEX rejects_received ON rejects(received_at_ms);

CREATE TABLE thread_inits (
    seq INTEGER PRIMARY KEY REFERENCES events(seq),
    ts_ms INTEGER NOT NULL,
    client TEXT NOT NULL,
    account TEXT NOT NULL,
    event_type TEXT NOT NULL,
    thread_id TEXT,
    session_id TEXT,
    model TEXT,
    ephemeral INTEGER,
    is_worktree INTEGER,
    initialization_mode TEXT,
    forked_from_thread_id TEXT,
    thread_source TEXT,
    subagent_source TEXT,
    parent_thread_id TEXT,
    created_at INTEGER
);
CREATE INDEX thread_inits_ts ON thread_inits(ts_ms);

CREATE TABLE turns (
    seq INTEGER PRIMARY KEY REFERENCES events(seq),
    ts_ms INTEGER NOT NULL,
    client TEXT NOT NULL,
    account TEXT NOT NULL,
    event_type TEXT NOT NULL,
    thread_id TEXT,
    session_id TEXT,
    turn_id TEXT,
    model TEXT,
    model_provider TEXT,
    sandbox_policy TEXT,
    approval_policy TEXT,
    approvals_reviewer TEXT,
    reasoning_effort TEXT,
    thread_source TEXT,
    status TEXT,
    is_first_turn INTEGER,
    num_input_images INTEGER,
    steer_count INTEGER,
    total_tool_call_count INTEGER,
    sampling_request_count INTEGER,
    input_tokens INTEGER,
    cached_input_tokens INTEGER,
    cache_write_input_tokens INTEGER,
    output_tokens INTEGER,
    reasoning_output_tokens INTEGER,
    total_tokens INTEGER,
    codex_error_kind TEXT,
    codex_error_http_status_code INTEGER,
    duration_ms INTEGER,
    started_at INTEGER,
    completed_at INTEGER
);
CREATE INDEX turns_ts ON turns(ts_ms);

CREATE TABLE tool_calls (
    seq INTEGER PRIMARY KEY REFERENCES events(seq),
    ts_ms INTEGER NOT NULL,
    client TEXT NOT NULL,
    account TEXT NOT NULL,
    event_type TEXT NOT NULL,
    thread_id TEXT,
    session_id TEXT,
    turn_id TEXT,
    item_id TEXT,
    tool_name TEXT,
    tool_event_type TEXT,
    started_at_ms INTEGER,
    completed_at_ms INTEGER,
    duration_ms INTEGER,
    execution_duration_ms INTEGER,
    review_count INTEGER,
    guardian_review_count INTEGER,
    user_review_count INTEGER,
    final_approval_outcome TEXT,
    terminal_status TEXT,
    failure_kind TEXT,
    exit_code INTEGER,
    command_execution_source TEXT,
    sandbox_backend TEXT,
    file_change_count INTEGER,
    dynamic_tool_name TEXT,
    success INTEGER
);
CREATE INDEX tool_calls_ts ON tool_calls(ts_ms);

CREATE TABLE reviews (
    seq INTEGER PRIMARY KEY REFERENCES events(seq),
    ts_ms INTEGER NOT NULL,
    client TEXT NOT NULL,
    account TEXT NOT NULL,
    event_type TEXT NOT NULL,
    thread_id TEXT,
    turn_id TEXT,
    item_id TEXT,
    review_id TEXT,
    subject_kind TEXT,
    subject_name TEXT,
    reviewer TEXT,
    trigger TEXT,
    status TEXT,
    resolution TEXT,
    started_at_ms INTEGER,
    completed_at_ms INTEGER,
    duration_ms INTEGER
);
CREATE INDEX reviews_ts ON reviews(ts_ms);

CREATE TABLE guardian_reviews (
    seq INTEGER PRIMARY KEY REFERENCES events(seq),
    ts_ms INTEGER NOT NULL,
    client TEXT NOT NULL,
    account TEXT NOT NULL,
    event_type TEXT NOT NULL,
    session_id TEXT,
    thread_id TEXT,
    turn_id TEXT,
    review_id TEXT,
    target_item_id TEXT,
    approval_request_source TEXT,
    reviewed_action_type TEXT,
    decision TEXT,
    terminal_status TEXT,
    failure_reason TEXT,
    attempt_count INTEGER,
    risk_level TEXT,
    user_authorization TEXT,
    outcome TEXT,
    guardian_model TEXT,
    time_to_first_token_ms INTEGER,
    completion_latency_ms INTEGER,
    started_at INTEGER,
    completed_at INTEGER,
    input_tokens INTEGER,
    output_tokens INTEGER,
    total_tokens INTEGER
);
CREATE INDEX guardian_reviews_ts ON guardian_reviews(ts_ms);

CREATE TABLE hook_runs (
    seq INTEGER PRIMARY KEY REFERENCES events(seq),
    ts_ms INTEGER NOT NULL,
    client TEXT NOT NULL,
    account TEXT NOT NULL,
    event_type TEXT NOT NULL,
    thread_id TEXT,
    turn_id TEXT,
    product_client_id TEXT,
    model_slug TEXT,
    hook_name TEXT,
    hook_source TEXT,
    handler_type TEXT,
    execution_mode TEXT,
    status TEXT
);
CREATE INDEX hook_runs_ts ON hook_runs(ts_ms);

CREATE TABLE compactions (
    seq INTEGER PRIMARY KEY REFERENCES events(seq),
    ts_ms INTEGER NOT NULL,
    client TEXT NOT NULL,
    account TEXT NOT NULL,
    event_type TEXT NOT NULL,
    thread_id TEXT,
    session_id TEXT,
    turn_id TEXT,
    trigger TEXT,
    reason TEXT,
    implementation TEXT,
    phase TEXT,
    strategy TEXT,
    status TEXT,
    codex_error_kind TEXT,
    active_context_tokens_before INTEGER,
    active_context_tokens_after INTEGER,
    started_at INTEGER,
    completed_at INTEGER,
    duration_ms INTEGER
);
CREATE INDEX compactions_ts ON compactions(ts_ms);

CREATE TABLE goals (
    seq INTEGER PRIMARY KEY REFERENCES events(seq),
    ts_ms INTEGER NOT NULL,
    client TEXT NOT NULL,
    account TEXT NOT NULL,
    event_type TEXT NOT NULL,
    thread_id TEXT,
    session_id TEXT,
    turn_id TEXT,
    goal_id TEXT,
    event_kind TEXT,
    goal_status TEXT,
    has_token_budget INTEGER,
    cumulative_tokens_accounted INTEGER,
    cumulative_time_accounted_seconds INTEGER
);
CREATE INDEX goals_ts ON goals(ts_ms);

CREATE TABLE steers (
    seq INTEGER PRIMARY KEY REFERENCES events(seq),
    ts_ms INTEGER NOT NULL,
    client TEXT NOT NULL,
    account TEXT NOT NULL,
    event_type TEXT NOT NULL,
    thread_id TEXT,
    session_id TEXT,
    expected_turn_id TEXT,
    accepted_turn_id TEXT,
    num_input_images INTEGER,
    result TEXT,
    rejection_reason TEXT,
    created_at INTEGER
);
CREATE INDEX steers_ts ON steers(ts_ms);

CREATE TABLE thread_archives (
    seq INTEGER PRIMARY KEY REFERENCES events(seq),
    ts_ms INTEGER NOT NULL,
    client TEXT NOT NULL,
    account TEXT NOT NULL,
    event_type TEXT NOT NULL,
    thread_id TEXT,
    action TEXT,
    occurred_at_ms INTEGER
);
CREATE INDEX thread_archives_ts ON thread_archives(ts_ms);

CREATE TABLE accepted_lines (
    seq INTEGER PRIMARY KEY REFERENCES events(seq),
    ts_ms INTEGER NOT NULL,
    client TEXT NOT NULL,
    account TEXT NOT NULL,
    event_type TEXT NOT NULL,
    thread_id TEXT,
    turn_id TEXT,
    model_slug TEXT,
    product_surface TEXT,
    repo_hash TEXT,
    completed_at INTEGER,
    accepted_added_lines INTEGER,
    accepted_deleted_lines INTEGER
);
CREATE INDEX accepted_lines_ts ON accepted_lines(ts_ms);

CREATE TABLE server_requests (
    seq INTEGER PRIMARY KEY REFERENCES events(seq),
    ts_ms INTEGER NOT NULL,
    client TEXT NOT NULL,
    account TEXT NOT NULL,
    event_type TEXT NOT NULL,
    thread_id TEXT,
    turn_id TEXT,
    item_id TEXT,
    request_method TEXT,
    delivery TEXT,
    delivery_count INTEGER,
    outcome TEXT,
    decision TEXT,
    tool_success INTEGER,
    error_code INTEGER,
    answered_by_original_connection INTEGER,
    requested_at_ms INTEGER,
    resolved_at_ms INTEGER,
    latency_ms INTEGER
);
CREATE INDEX server_requests_ts ON server_requests(ts_ms);

CREATE TABLE analytics_drops (
    seq INTEGER PRIMARY KEY REFERENCES events(seq),
    ts_ms INTEGER NOT NULL,
    client TEXT NOT NULL,
    account TEXT NOT NULL,
    event_type TEXT NOT NULL,
    stage TEXT,
    reason TEXT,
    dropped_event_type TEXT,
    count INTEGER,
    window_start_ms INTEGER,
    window_end_ms INTEGER
);
CREATE INDEX analytics_drops_ts ON analytics_drops(ts_ms);
"#;

//! Event families: which event types get a typed table, and which of their fields become columns.
//! The same list drives validation (a known field with the wrong JSON type is rejected) and the
//! typed inserts of every store. Table names here are static; values always go in as parameters.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use crate::params_scan::Scalar;

/// The JSON type a typed column expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A JSON string.
    Text,
    /// A JSON integer that fits an i64.
    Int,
    /// A JSON boolean.
    Bool,
}

/// One typed column: its name and where it comes from in `event_params`.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Column name in the typed table.
    pub name: &'static str,
    /// Path inside `event_params` (one key for top-level fields).
    pub path: &'static [&'static str],
    /// Expected JSON type.
    pub kind: Kind,
}

/// A typed table and the event types that land in it.
#[derive(Debug)]
pub struct Family {
    /// Table name.
    pub table: &'static str,
    /// Event types stored in this table.
    pub event_types: &'static [&'static str],
    /// Typed columns (besides the common `seq`, `ts_ms`, `client`, `account`, `event_type`).
    pub columns: &'static [Column],
}

const fn t(name: &'static str) -> Column {
    Column {
        name,
        path: &[],
        kind: Kind::Text,
    }
}
const fn i(name: &'static str) -> Column {
    Column {
        name,
        path: &[],
        kind: Kind::Int,
    }
}
const fn b(name: &'static str) -> Column {
    Column {
        name,
        path: &[],
        kind: Kind::Bool,
    }
}

impl Column {
    /// The path of this column inside `event_params` (its own name unless nested).
    pub fn json_path(&self) -> Vec<&'static str> {
        if self.path.is_empty() {
            vec![self.name]
        } else {
            self.path.to_vec()
        }
    }

    /// The store value of what was sent for this column (`None`: absent), or why it is refused.
    pub fn convert<'a>(
        &self,
        sent: Option<&Scalar<'a>>,
    ) -> Result<TypedValue<Cow<'a, str>>, String> {
        match (self.kind, sent) {
            (_, None | Some(Scalar::Null)) => Ok(TypedValue::Null),
            (Kind::Text, Some(Scalar::Str(s))) => Ok(TypedValue::Text(s.clone())),
            (Kind::Int, Some(Scalar::Int(i))) => Ok(TypedValue::Int(*i)),
            (Kind::Bool, Some(Scalar::Bool(b))) => Ok(TypedValue::Int(i64::from(*b))),
            (kind, Some(other)) => {
                let expected = match kind {
                    Kind::Text => "a string",
                    Kind::Int => "an integer",
                    Kind::Bool => "a boolean",
                };
                Err(format!(
                    "expected {expected} or null, got {}",
                    other.type_name()
                ))
            }
        }
    }
}

/// A typed column's value as the stores bind it (booleans as 0/1); its text is kept as a place in
/// the event's params text ([`TypedText`]), and is a `Cow` only while the columns are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypedValue<S = TypedText> {
    /// Absent, null, or not of the column's type.
    Null,
    /// Integers and booleans.
    Int(i64),
    /// Strings.
    Text(S),
}

impl<S> TypedValue<S> {
    /// The same value with its text turned into another string type.
    pub fn map_text<T>(self, f: impl FnOnce(S) -> T) -> TypedValue<T> {
        match self {
            TypedValue::Null => TypedValue::Null,
            TypedValue::Int(i) => TypedValue::Int(i),
            TypedValue::Text(s) => TypedValue::Text(f(s)),
        }
    }
}

/// Where a typed column's text is kept. Nearly always it is a string of the params as sent, so
/// an event keeps only its place in its own params text: no copy, no allocation, and no count
/// on the shared body per value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypedText {
    /// Bytes `start .. start + len` of the event's params text.
    InParams {
        /// Byte offset in the params text.
        start: u32,
        /// Length in bytes.
        len: u32,
    },
    /// Text of its own: the string held escapes, or did not come from the params text.
    Own(Box<str>),
}

impl TypedText {
    /// `text`, read from `params`: its place there when it is a slice of it, else a copy.
    pub fn new(params: &str, text: Cow<'_, str>) -> Self {
        let text = match text {
            Cow::Borrowed(text) => text,
            Cow::Owned(text) => return TypedText::Own(text.into_boxed_str()),
        };
        let place = crate::event::offset_in(params, text)
            .and_then(|start| Some((u32::try_from(start).ok()?, u32::try_from(text.len()).ok()?)));
        match place {
            Some((start, len)) => TypedText::InParams { start, len },
            None => TypedText::Own(text.into()),
        }
    }

    /// The text, given the params text it was read from ("" if it does not fit there, which an
    /// event built by [`crate::event::IncomingEvent`] never has).
    pub fn resolve<'a>(&'a self, params: &'a str) -> &'a str {
        match self {
            TypedText::InParams { start, len } => {
                let (start, len) = (*start as usize, *len as usize);
                let end = start.saturating_add(len);
                params.get(start..end).unwrap_or_default()
            }
            TypedText::Own(text) => text,
        }
    }
}

/// Event types of tool items, all in `tool_calls` (kind = event type).
pub const TOOL_EVENT_TYPES: &[&str] = &[
    "codex_command_execution_event",
    "codex_file_change_event",
    "codex_dynamic_tool_call_event",
    "codex_mcp_tool_call_event",
    "codex_web_search_event",
    "codex_image_generation_event",
    "codex_collab_agent_tool_call_event",
];

/// Tally extension understood by the collector: an app-server reports analytics it had to drop.
pub const ANALYTICS_DROPPED: &str = "tally_analytics_dropped";

/// Accepted lines of a turn's diff, hashed.
pub const ACCEPTED_LINE_FINGERPRINTS: &str = "codex_accepted_line_fingerprints";

/// Event types that name no client: their client is only the sender's `originator` header (an
/// app-server's own drop reports; fingerprints), so they list no client of their own.
pub const CLIENTLESS_EVENT_TYPES: &[&str] = &[ANALYTICS_DROPPED, ACCEPTED_LINE_FINGERPRINTS];

/// Whether every event type of `table` names no client (see [`CLIENTLESS_EVENT_TYPES`]).
pub fn is_clientless_table(table: &str) -> bool {
    FAMILIES.iter().any(|f| {
        f.table == table
            && f.event_types
                .iter()
                .all(|t| CLIENTLESS_EVENT_TYPES.contains(t))
    })
}

/// A thread started, forked or resumed.
pub const THREAD_INITIALIZED: &str = "codex_thread_initialized";

/// Every typed table.
pub static FAMILIES: &[Family] = &[
    Family {
        table: "thread_inits",
        event_types: &[THREAD_INITIALIZED],
        columns: &[
            t("thread_id"),
            t("session_id"),
            t("model"),
            b("ephemeral"),
            b("is_worktree"),
            t("initialization_mode"),
            t("forked_from_thread_id"),
            t("thread_source"),
            t("subagent_source"),
            t("parent_thread_id"),
            i("created_at"),
        ],
    },
    Family {
        table: "turns",
        event_types: &["codex_turn_event"],
        columns: &[
            t("thread_id"),
            t("session_id"),
            t("turn_id"),
            t("model"),
            t("model_provider"),
            t("sandbox_policy"),
            t("approval_policy"),
            t("approvals_reviewer"),
            t("reasoning_effort"),
            t("thread_source"),
            t("status"),
            b("is_first_turn"),
            i("num_input_images"),
            i("steer_count"),
            i("total_tool_call_count"),
            i("sampling_request_count"),
            i("input_tokens"),
            i("cached_input_tokens"),
            i("cache_write_input_tokens"),
            i("output_tokens"),
            i("reasoning_output_tokens"),
            i("total_tokens"),
            t("codex_error_kind"),
            i("codex_error_http_status_code"),
            i("duration_ms"),
            i("started_at"),
            i("completed_at"),
        ],
    },
    Family {
        table: "tool_calls",
        event_types: TOOL_EVENT_TYPES,
        columns: &[
            t("thread_id"),
            t("session_id"),
            t("turn_id"),
            t("item_id"),
            t("tool_name"),
            t("tool_event_type"),
            i("started_at_ms"),
            i("completed_at_ms"),
            i("duration_ms"),
            i("execution_duration_ms"),
            i("review_count"),
            i("guardian_review_count"),
            i("user_review_count"),
            t("final_approval_outcome"),
            t("terminal_status"),
            t("failure_kind"),
            i("exit_code"),
            t("command_execution_source"),
            t("sandbox_backend"),
            i("file_change_count"),
            t("dynamic_tool_name"),
            b("success"),
        ],
    },
    Family {
        table: "reviews",
        event_types: &["codex_review_event"],
        columns: &[
            t("thread_id"),
            t("turn_id"),
            t("item_id"),
            t("review_id"),
            t("subject_kind"),
            t("subject_name"),
            t("reviewer"),
            t("trigger"),
            t("status"),
            t("resolution"),
            i("started_at_ms"),
            i("completed_at_ms"),
            i("duration_ms"),
        ],
    },
    Family {
        table: "guardian_reviews",
        event_types: &["codex_guardian_review"],
        columns: &[
            t("session_id"),
            t("thread_id"),
            t("turn_id"),
            t("review_id"),
            t("target_item_id"),
            t("approval_request_source"),
            Column {
                name: "reviewed_action_type",
                path: &["reviewed_action", "type"],
                kind: Kind::Text,
            },
            t("decision"),
            t("terminal_status"),
            t("failure_reason"),
            i("attempt_count"),
            t("risk_level"),
            t("user_authorization"),
            t("outcome"),
            t("guardian_model"),
            i("time_to_first_token_ms"),
            i("completion_latency_ms"),
            i("started_at"),
            i("completed_at"),
            i("input_tokens"),
            i("output_tokens"),
            i("total_tokens"),
        ],
    },
    Family {
        table: "hook_runs",
        event_types: &["codex_hook_run"],
        columns: &[
            t("thread_id"),
            t("turn_id"),
            t("product_client_id"),
            t("model_slug"),
            t("hook_name"),
            t("hook_source"),
            t("handler_type"),
            t("execution_mode"),
            t("status"),
        ],
    },
    Family {
        table: "compactions",
        event_types: &["codex_compaction_event"],
        columns: &[
            t("thread_id"),
            t("session_id"),
            t("turn_id"),
            t("trigger"),
            t("reason"),
            t("implementation"),
            t("phase"),
            t("strategy"),
            t("status"),
            t("codex_error_kind"),
            i("active_context_tokens_before"),
            i("active_context_tokens_after"),
            i("started_at"),
            i("completed_at"),
            i("duration_ms"),
        ],
    },
    Family {
        table: "goals",
        event_types: &["codex_goal_event"],
        columns: &[
            t("thread_id"),
            t("session_id"),
            t("turn_id"),
            t("goal_id"),
            t("event_kind"),
            t("goal_status"),
            b("has_token_budget"),
            i("cumulative_tokens_accounted"),
            i("cumulative_time_accounted_seconds"),
        ],
    },
    Family {
        table: "steers",
        event_types: &["codex_turn_steer_event"],
        columns: &[
            t("thread_id"),
            t("session_id"),
            t("expected_turn_id"),
            t("accepted_turn_id"),
            i("num_input_images"),
            t("result"),
            t("rejection_reason"),
            i("created_at"),
        ],
    },
    Family {
        table: "thread_archives",
        event_types: &["codex_thread_archive_event"],
        columns: &[t("thread_id"), t("action"), i("occurred_at_ms")],
    },
    Family {
        table: "accepted_lines",
        event_types: &[ACCEPTED_LINE_FINGERPRINTS],
        columns: &[
            t("thread_id"),
            t("turn_id"),
            t("model_slug"),
            t("product_surface"),
            t("repo_hash"),
            i("completed_at"),
            i("accepted_added_lines"),
            i("accepted_deleted_lines"),
        ],
    },
    Family {
        table: "server_requests",
        event_types: &["codex_server_request_event"],
        columns: &[
            t("thread_id"),
            t("turn_id"),
            t("item_id"),
            t("request_method"),
            t("delivery"),
            i("delivery_count"),
            t("outcome"),
            t("decision"),
            b("tool_success"),
            i("error_code"),
            b("answered_by_original_connection"),
            i("requested_at_ms"),
            i("resolved_at_ms"),
            i("latency_ms"),
        ],
    },
    Family {
        table: "analytics_drops",
        event_types: &[ANALYTICS_DROPPED],
        columns: &[
            t("stage"),
            t("reason"),
            t("dropped_event_type"),
            i("count"),
            i("window_start_ms"),
            i("window_end_ms"),
        ],
    },
];

/// The typed table for an event type, `None` for types kept only in the raw table.
pub fn family_for(event_type: &str) -> Option<&'static Family> {
    family_index(event_type).and_then(|i| FAMILIES.get(i))
}

/// Position in [`FAMILIES`] of the typed table for an event type.
pub fn family_index(event_type: &str) -> Option<usize> {
    // Looked up once per event: a table built once, with a fixed-seed hash (read-only, so crafted
    // type names cannot degrade it).
    type Index = HashMap<&'static str, usize, foldhash::fast::FixedState>;
    static INDEX: OnceLock<Index> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut index = Index::default();
        for (i, family) in FAMILIES.iter().enumerate() {
            for ty in family.event_types {
                index.entry(ty).or_insert(i);
            }
        }
        index
    });
    index.get(event_type).copied()
}

/// The typed values of an event of this family from what was sent for each column (in column
/// order). Strict: the first column of the wrong JSON type refuses the event with (field path,
/// reason). Lenient: such a value is stored as NULL. Absent and null fields are always accepted:
/// Codex versions differ in what they send. `text` makes each string what the caller keeps.
pub fn typed_values<'a, S>(
    family: &Family,
    sent: &[Option<Scalar<'a>>],
    strict: bool,
    text: impl Fn(Cow<'a, str>) -> S,
) -> Result<Vec<TypedValue<S>>, (String, String)> {
    // Sized up front: collecting a Result iterator would grow the vector from empty, reallocating
    // several times per event (~5% of ingest CPU in the profile).
    let mut values = Vec::with_capacity(family.columns.len());
    for (i, column) in family.columns.iter().enumerate() {
        values.push(match column.convert(sent.get(i).and_then(Option::as_ref)) {
            Ok(value) => value.map_text(&text),
            Err(_) if !strict => TypedValue::Null,
            Err(reason) => return Err((column.json_path().join("."), reason)),
        });
    }
    Ok(values)
}

/// The JSON type name of a raw JSON text (already known to be valid JSON), from its first bytes.
pub fn raw_json_type(text: &str) -> &'static str {
    match text.trim_start().as_bytes().first() {
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        _ if text.contains(['.', 'e', 'E']) => "number",
        _ => "integer",
    }
}

#[cfg(test)]
#[path = "family_tests.rs"]
mod tests;

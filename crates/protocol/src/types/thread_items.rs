//! `thread/items/list`: a thread's items, page by page (the TUI reads a resumed thread's history
//! this way).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::types::{SortDirection, ThreadItem};

/// `thread/items/list` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadItemsListParams {
    pub thread_id: String,
    /// Only this turn's items; all the thread's when absent.
    #[serde(default)]
    pub turn_id: Option<String>,
    #[serde(default)]
    pub cursor: Option<ThreadItemsListCursor>,
    #[serde(default)]
    pub limit: Option<u32>,
    /// Ascending unless asked.
    #[serde(default)]
    pub sort_direction: Option<SortDirection>,
    /// Which outputs to fetch separately; Tally sends every output inline.
    #[serde(default)]
    pub defer_output: Option<serde_json::Value>,
}

/// Where a page starts: a cursor this server returned, or an item of the requested turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ThreadItemsListCursor {
    Opaque(String),
    Anchor(ThreadItemsListAnchor),
}

/// An item of the requested turn, excluded from the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ThreadItemsListAnchor {
    #[serde(rename_all = "camelCase")]
    Item { item_id: String },
}

/// One item with the turn it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadItemEntry {
    pub item: ThreadItem,
    pub turn_id: String,
    pub started_at_ms: Option<i64>,
    pub completed_at_ms: Option<i64>,
}

/// `thread/items/list` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadItemsListResponse {
    pub data: Vec<ThreadItemEntry>,
    pub next_cursor: Option<String>,
    pub backwards_cursor: Option<String>,
}

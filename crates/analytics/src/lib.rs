//! Tally's analytics: facts from the outgoing seam, the `AnalyticsEventsClient` that filters them,
//! the reducer that joins them into Codex-named events, and delivery that loses nothing.

pub mod client;
pub mod delivery;
pub mod drops;
pub mod events;
pub mod facts;
pub mod guardian_events;
pub mod hook_events;
pub mod identifier;
pub mod lifecycle_events;
pub mod normalize;
pub mod pipeline;

pub mod reducer;
pub mod runtime_info;
pub mod status;
pub mod tool_items;

pub use client::{AnalyticsEventsClient, ClientStats};
pub use events::AnalyticsEvent;
pub use facts::{
    AnalyticsFact, ClientInfoFact, CompactionFact, GoalEventKind, GoalFact, RpcTransport,
    ServerRequestEnd, TimedFact, TurnProfileFact,
};
pub use reducer::{Reducer, ReducerLimits, ReducerStats};

/// Milliseconds since the Unix epoch.
pub(crate) fn clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

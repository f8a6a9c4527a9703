//! Tally's core: configuration, threads, turns and items, rollout persistence, and model clients.

pub mod clock;
mod compaction;
pub mod config;
pub mod error;
pub mod event_sink;
mod goals;
pub mod guardian;
pub mod home;
mod hook_dispatch;
pub mod hooks;
pub mod model;
mod prompt;
pub mod repo_hash;
pub mod rollout;
mod thread;
mod thread_list;
pub mod thread_manager;
mod thread_settings;
pub mod thread_tasks;
pub mod tools;
mod turn_emitter;
mod turn_items;
pub mod turn_profile;
mod turn_runner;
mod user_shell;

pub use config::Config;
pub use error::CoreError;
pub use event_sink::{
    CompactionReport, GoalChange, GoalReport, LifecycleReport, RequestResolution, ThreadEventSink,
};
pub use thread_manager::{ClientIdentity, StartedTurn, ThreadManager};
pub use turn_profile::TurnProfileSummary;

/// Tally's own version, reported in `userAgent` and `Thread.cliVersion`.
pub const TALLY_VERSION: &str = env!("CARGO_PKG_VERSION");

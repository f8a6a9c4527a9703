//! Codex-style command hooks: find `hooks.json` by layer, decide which handlers are trusted, run
//! them as child processes with a deadline, and turn what they print into an outcome.
//!
//! The contract is `HOOKS.md`; this crate knows nothing about threads, turns or the wire.

mod discovery;
mod event;
mod matcher;
mod outcome;
mod parse;
mod payload;
mod runner;
mod trust;

pub use discovery::{discover, DiscoveredHook, Discovery, DiscoveryRoots, HookSource, HookWarning};
pub use event::HookEvent;
pub use matcher::Matcher;
pub use outcome::{interpret, EntryKind, HookEntry, HookOutcome, HookRunStatus};
pub use parse::CommandHandler;
pub use payload::{HookPayload, PayloadContext};
pub use runner::{run_command, RunOutput, RunnerConfig, OUTPUT_CAP};
pub use trust::{current_hash, HookStates, TrustStatus};

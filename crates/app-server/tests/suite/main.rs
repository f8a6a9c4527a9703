//! The app-server's integration tests, one module per capability, linked into one binary:
//! each test binary links every dependency, so fifteen of them cost a CI machine ~1 GB and
//! fifteen links.

mod common;

mod account;
mod agent_identity;
mod analytics;
mod analytics_lifecycle;
mod analytics_tools;
mod compaction;
mod errors;
mod goals;
mod guardian;
mod hooks;
mod idle_unload;
mod session;
mod tools;
mod transports;
mod user_actions;

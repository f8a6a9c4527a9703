//! The app-server's integration tests, one module per capability, linked into one binary:
//! each test binary links every dependency, so fourteen of them cost a CI machine ~1 GB and
//! fourteen links. (`agent_identity` keeps a binary of its own: it captures logs.)

mod common;

mod account;
mod analytics;
mod analytics_lifecycle;
mod analytics_tools;
mod compaction;
mod errors;
mod goals;
mod guardian;
mod hooks;
mod idle_unload;
mod review;
mod session;
mod tools;
mod transports;
mod tui_startup;
mod user_actions;

//! The tools a turn offers the model: the shell (`exec_command`), `apply_patch`, the client's
//! dynamic tools and (experimental) `request_user_input`, with the approval rules and the
//! sandbox that govern them.

pub(crate) mod apply_patch;
pub(crate) mod approval;
pub(crate) mod call;
mod capped_output;
pub(crate) mod commands;
pub(crate) mod exec;
pub mod sandbox;
pub(crate) mod spec;
pub(crate) mod turn_diff;
pub(crate) mod user_input;
mod utf8_stream;

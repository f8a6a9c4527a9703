//! Payload types shared by the method tables, named as in the Codex schema.

mod account;
mod auto_review;
mod config;
mod goal;
mod hooks;
mod initialize;
mod item;
mod model;
mod plugins;
mod policy;
mod review;
mod thread;
mod thread_items;
mod thread_params;
mod token_usage;
mod tool_items;
mod turn;
mod turn_params;
mod user_input;

pub use account::*;
pub use auto_review::*;
pub use config::*;
pub use goal::*;
pub use hooks::*;
pub use initialize::*;
pub use item::*;
pub use model::*;
pub use plugins::*;
pub use policy::*;
pub use review::*;
pub use thread::*;
pub use thread_items::*;
pub use thread_params::*;
pub use token_usage::*;
pub use tool_items::*;
pub use turn::*;
pub use turn_params::*;
pub use user_input::*;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Params of methods that take none: accepts absent, null or `{}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NoParams {}

/// The empty result object `{}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EmptyResponse {}

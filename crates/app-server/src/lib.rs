//! Tally's app-server: transports, the initialize handshake, the message processor and its
//! handlers, and `OutgoingMessageSender`, the one place every outgoing message leaves.

pub mod analytics_setup;
pub mod auth_bridge;
pub mod auth_setup;
mod connection;
mod error_map;
mod handlers;
mod idle_unload;
mod initialize;
pub mod outgoing;
mod pages;
mod processor;
pub mod registry;
pub mod server;
mod thread_events;
mod thread_queue;
pub mod transport;

pub use auth_bridge::ExternalAuthRefreshBridge;
pub use connection::{ConnectionId, OutboundPolicy};
pub use outgoing::OutgoingMessageSender;
pub use processor::ProcessorStats;
pub use server::{AppServer, AppServerOptions};

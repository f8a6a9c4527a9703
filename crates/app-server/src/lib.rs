//! Tally's app-server: transports, the initialize handshake, the message processor and its
//! handlers, and `OutgoingMessageSender`, the one place every outgoing message leaves.

mod connection;
mod error_map;
mod handlers;
mod initialize;
pub mod outgoing;
mod processor;
mod registry;
pub mod server;
mod thread_events;
mod thread_queue;
pub mod transport;
mod turn_pages;

pub use connection::ConnectionId;
pub use outgoing::OutgoingMessageSender;
pub use server::{AppServer, AppServerOptions};

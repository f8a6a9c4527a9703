//! Connection identity and what a connection negotiated at `initialize`.

use std::collections::HashSet;
use std::fmt;
use tally_core::ClientIdentity;

/// A process-unique connection id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn-{}", self.0)
    }
}

/// How a connection's outbound queue behaves when full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundPolicy {
    /// Wait for room (stdio: the one client is the whole point of the process).
    Wait,
    /// Disconnect the client (WebSocket: a slow client must not grow server memory).
    DisconnectWhenFull,
}

/// What a connection declared in `initialize`; fixed for its lifetime.
#[derive(Debug, Clone, Default)]
pub struct SessionInfo {
    pub client: ClientIdentity,
    pub experimental_api: bool,
    pub opt_out_notifications: HashSet<String>,
}

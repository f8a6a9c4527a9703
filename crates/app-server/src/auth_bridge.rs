//! `ExternalAuthRefreshBridge`: asks the client that owns the ChatGPT tokens for fresh ones
//! (`account/chatgptAuthTokens/refresh`). It holds only a `Weak` reference to the sender and
//! upgrades it per refresh, so auth (which analytics holds strongly) never keeps the app-server's
//! outbound path, and with it the runtime, alive at shutdown.

use crate::outgoing::{OutgoingMessageSender, ServerRequestOutcome};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tally_protocol::server_request::{
    ChatgptAuthTokensRefreshParams, ChatgptAuthTokensRefreshResponse,
};
use tally_protocol::{ServerRequest, ServerResponse};

/// How long a client has to answer a refresh, as in Codex.
pub const REFRESH_DEADLINE: Duration = Duration::from_secs(10);

/// Why a refresh failed; every case is an auth error for the caller, never a hang.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RefreshError {
    #[error("the app-server is shutting down")]
    ServerGone,
    #[error("no initialized client can refresh the tokens")]
    NoClient,
    #[error("the client did not answer the token refresh within {0:?}")]
    Timeout(Duration),
    #[error("the client refused the token refresh (code {0})")]
    Refused(i64),
    #[error("the token refresh was cancelled")]
    Cancelled,
}

/// A weak bridge from auth to the clients.
#[derive(Clone)]
pub struct ExternalAuthRefreshBridge {
    outgoing: Weak<OutgoingMessageSender>,
    deadline: Duration,
}

impl ExternalAuthRefreshBridge {
    /// A bridge to `outgoing` that does not keep it alive.
    pub fn new(outgoing: &Arc<OutgoingMessageSender>) -> Self {
        Self::with_deadline(outgoing, REFRESH_DEADLINE)
    }

    /// The same, with another answer deadline.
    pub fn with_deadline(outgoing: &Arc<OutgoingMessageSender>, deadline: Duration) -> Self {
        Self {
            outgoing: Arc::downgrade(outgoing),
            deadline,
        }
    }

    /// Asks every initialized client for fresh tokens; the first valid answer wins.
    pub async fn refresh(
        &self,
        previous_account_id: Option<String>,
    ) -> Result<ChatgptAuthTokensRefreshResponse, RefreshError> {
        let (id, answer) = {
            // The strong reference lives only while the request is sent, not while we wait.
            let outgoing = self.outgoing.upgrade().ok_or(RefreshError::ServerGone)?;
            let targets = outgoing.registry().initialized_connections();
            if targets.is_empty() {
                return Err(RefreshError::NoClient);
            }
            let request = ServerRequest::ChatgptAuthTokensRefresh(ChatgptAuthTokensRefreshParams {
                reason: "unauthorized".into(),
                previous_account_id,
            });
            outgoing.send_request_to(targets, request).await
        };
        match tokio::time::timeout(self.deadline, answer).await {
            Ok(Ok(ServerRequestOutcome::Answered {
                response: ServerResponse::ChatgptAuthTokensRefresh(tokens),
                ..
            })) => Ok(tokens),
            Ok(Ok(ServerRequestOutcome::Refused { error, .. })) => {
                Err(RefreshError::Refused(error.code))
            }
            Ok(Ok(_)) | Ok(Err(_)) => Err(RefreshError::Cancelled),
            Err(_) => {
                if let Some(outgoing) = self.outgoing.upgrade() {
                    outgoing.cancel_request(&id);
                }
                Err(RefreshError::Timeout(self.deadline))
            }
        }
    }
}

#[cfg(test)]
#[path = "auth_bridge_tests.rs"]
mod tests;

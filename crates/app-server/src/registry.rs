//! Live connections, their outbound queues, and which threads each is subscribed to.

use crate::connection::{ConnectionId, OutboundPolicy, SessionInfo};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long a `Wait` connection may block the sender before it is dropped.
const WAIT_DEADLINE: Duration = Duration::from_secs(30);

struct Entry {
    outbound: mpsc::Sender<Arc<str>>,
    policy: OutboundPolicy,
    session: Option<Arc<SessionInfo>>,
    closed: CancellationToken,
}

#[derive(Default)]
struct Inner {
    connections: HashMap<ConnectionId, Entry>,
    subscriptions: HashMap<String, BTreeSet<ConnectionId>>,
}

/// Every live connection; shared by the transports, the processor and the sender.
#[derive(Default)]
pub struct ConnectionRegistry {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
    dropped_slow_clients: AtomicU64,
}

/// Why a frame did not reach a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryError {
    Gone,
    Disconnected,
}

impl ConnectionRegistry {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a connection whose frames go to `outbound`; `closed` fires when it must go away.
    pub fn register(
        &self,
        outbound: mpsc::Sender<Arc<str>>,
        policy: OutboundPolicy,
    ) -> (ConnectionId, CancellationToken) {
        let id = ConnectionId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let closed = CancellationToken::new();
        self.lock().connections.insert(
            id,
            Entry {
                outbound,
                policy,
                session: None,
                closed: closed.clone(),
            },
        );
        (id, closed)
    }

    /// Forgets a connection and its subscriptions.
    pub fn unregister(&self, id: ConnectionId) {
        let mut inner = self.lock();
        if let Some(e) = inner.connections.remove(&id) {
            e.closed.cancel();
        }
        inner.subscriptions.retain(|_, subs| {
            subs.remove(&id);
            !subs.is_empty()
        });
    }

    /// Marks a connection initialized with what it declared.
    pub fn set_session(&self, id: ConnectionId, session: SessionInfo) {
        if let Some(e) = self.lock().connections.get_mut(&id) {
            e.session = Some(Arc::new(session));
        }
    }

    /// What a connection declared at `initialize`, if it has.
    pub fn session(&self, id: ConnectionId) -> Option<Arc<SessionInfo>> {
        self.lock()
            .connections
            .get(&id)
            .and_then(|e| e.session.clone())
    }

    /// Subscribes a connection to a thread's events.
    pub fn subscribe(&self, id: ConnectionId, thread_id: &str) {
        let mut inner = self.lock();
        if inner.connections.contains_key(&id) {
            inner
                .subscriptions
                .entry(thread_id.to_string())
                .or_default()
                .insert(id);
        }
    }

    /// Removes a subscription; returns whether there was one.
    pub fn unsubscribe(&self, id: ConnectionId, thread_id: &str) -> bool {
        let mut inner = self.lock();
        let Some(subs) = inner.subscriptions.get_mut(thread_id) else {
            return false;
        };
        let removed = subs.remove(&id);
        if subs.is_empty() {
            inner.subscriptions.remove(thread_id);
        }
        removed
    }

    /// Whether any connection is subscribed to a thread.
    pub fn has_subscribers(&self, thread_id: &str) -> bool {
        self.lock()
            .subscriptions
            .get(thread_id)
            .is_some_and(|subs| !subs.is_empty())
    }

    /// Drops every subscription to a thread (it was archived or unloaded).
    pub fn clear_thread(&self, thread_id: &str) {
        self.lock().subscriptions.remove(thread_id);
    }

    /// Initialized connections subscribed to a thread that did not opt out of `method`.
    pub fn subscribers(&self, thread_id: &str, method: &str) -> Vec<ConnectionId> {
        let inner = self.lock();
        let Some(subs) = inner.subscriptions.get(thread_id) else {
            return Vec::new();
        };
        subs.iter()
            .copied()
            .filter(|id| wants(&inner, *id, method))
            .collect()
    }

    /// Initialized connections subscribed to a thread: who gets its server requests (requests
    /// are never suppressed by notification opt-outs).
    pub fn request_targets(&self, thread_id: &str) -> Vec<ConnectionId> {
        let inner = self.lock();
        let Some(subs) = inner.subscriptions.get(thread_id) else {
            return Vec::new();
        };
        subs.iter()
            .copied()
            .filter(|id| {
                inner
                    .connections
                    .get(id)
                    .is_some_and(|e| e.session.is_some())
            })
            .collect()
    }

    /// Whether an initialized connection wants notifications of `method`.
    pub fn wants_notification(&self, id: ConnectionId, method: &str) -> bool {
        wants(&self.lock(), id, method)
    }

    /// Queues one frame for a connection according to its policy.
    pub async fn deliver(&self, id: ConnectionId, frame: Arc<str>) -> Result<(), DeliveryError> {
        let (tx, policy, closed) = {
            let inner = self.lock();
            let e = inner.connections.get(&id).ok_or(DeliveryError::Gone)?;
            (e.outbound.clone(), e.policy, e.closed.clone())
        };
        match policy {
            OutboundPolicy::Wait => match tx.send_timeout(frame, WAIT_DEADLINE).await {
                Ok(()) => Ok(()),
                Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(DeliveryError::Gone),
                Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                    self.drop_slow(id, &closed, "client did not read for 30 s");
                    Err(DeliveryError::Disconnected)
                }
            },
            OutboundPolicy::DisconnectWhenFull => match tx.try_send(frame) {
                Ok(()) => Ok(()),
                Err(mpsc::error::TrySendError::Closed(_)) => Err(DeliveryError::Gone),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.drop_slow(id, &closed, "outbound queue full");
                    Err(DeliveryError::Disconnected)
                }
            },
        }
    }

    fn drop_slow(&self, id: ConnectionId, closed: &CancellationToken, reason: &str) {
        self.dropped_slow_clients.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(connection = %id, reason, "disconnecting slow client");
        closed.cancel();
    }

    /// How many clients were disconnected for not reading.
    pub fn dropped_slow_clients(&self) -> u64 {
        self.dropped_slow_clients.load(Ordering::Relaxed)
    }

    /// Every initialized connection (for requests that are not thread-scoped).
    pub fn initialized_connections(&self) -> Vec<ConnectionId> {
        let mut ids: Vec<ConnectionId> = self
            .lock()
            .connections
            .iter()
            .filter(|(_, e)| e.session.is_some())
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        ids
    }

    /// Number of live connections.
    pub fn len(&self) -> usize {
        self.lock().connections.len()
    }

    /// Whether there is no live connection.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn wants(inner: &Inner, id: ConnectionId, method: &str) -> bool {
    inner
        .connections
        .get(&id)
        .and_then(|e| e.session.as_ref())
        .is_some_and(|s| !s.opt_out_notifications.contains(method))
}

//! Review sessions: one reviewer conversation per parent thread, continued across reviews.

use crate::prompt::ReviewMessage;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Sessions kept at most; the least recently used one is forgotten first.
const MAX_SESSIONS: usize = 1_024;

/// The reviewer conversation of one parent thread.
#[derive(Debug)]
pub(crate) struct Session {
    pub guardian_thread_id: String,
    /// When the reviewer thread was created, Unix ms.
    pub created_at_ms: i64,
    /// Everything said in reviews that reached an assessment.
    pub history: Vec<ReviewMessage>,
    /// How many parent transcript entries the reviewer has already seen.
    pub transcript_seen: usize,
    /// Reviews that reached an assessment.
    pub assessed_reviews: u32,
}

/// A session handle: reviews of one thread wait for each other on its lock.
pub(crate) type SessionHandle = Arc<tokio::sync::Mutex<Session>>;

struct Entry {
    handle: SessionHandle,
    last_used: u64,
}

/// All sessions, by parent thread id.
#[derive(Default)]
pub(crate) struct SessionStore {
    inner: Mutex<(HashMap<String, Entry>, u64)>,
}

impl SessionStore {
    /// The thread's session, and whether it was created by this call.
    pub fn get_or_create(&self, parent_thread_id: &str) -> (SessionHandle, bool) {
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (map, clock) = &mut *guard;
        *clock += 1;
        let now = *clock;
        if let Some(entry) = map.get_mut(parent_thread_id) {
            entry.last_used = now;
            return (entry.handle.clone(), false);
        }
        if map.len() >= MAX_SESSIONS {
            let oldest = map
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        let handle = Arc::new(tokio::sync::Mutex::new(Session {
            guardian_thread_id: uuid::Uuid::now_v7().to_string(),
            created_at_ms: crate::review::unix_ms(),
            history: Vec::new(),
            transcript_seen: 0,
            assessed_reviews: 0,
        }));
        map.insert(
            parent_thread_id.to_string(),
            Entry {
                handle: handle.clone(),
                last_used: now,
            },
        );
        (handle, true)
    }
}

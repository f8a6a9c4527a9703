//! The reducer: joins facts into events. State is per connection, thread, turn and request, every
//! map is capped, and every eviction or fact dropped for missing context is counted by reason.

use crate::events::*;
use crate::facts::{
    AnalyticsFact, ClientInfoFact, CompactionFact, GoalFact, ServerRequestEnd, TimedFact,
    TurnProfileFact,
};
use crate::identifier::{client_name, identifier, identifier_or_other};
use crate::lifecycle_events::{self as lifecycle, Attribution, TurnLines};
use crate::normalize::*;
use crate::tool_items::{self, ReviewSummary, ToolDetails};
use std::collections::{BTreeMap, HashMap, HashSet};
use tally_protocol::server_notification::TurnNotification;
use tally_protocol::server_notification::{ItemCompletedNotification, ItemStartedNotification};
use tally_protocol::types::{
    HookRunNotification, ThreadSessionResponse, TokenUsageBreakdown, TurnStartParams, TurnStatus,
};
use tally_protocol::{
    ClientRequest, ClientResponsePayload, RequestId, ServerNotification, ServerRequest,
};

/// Caps on reducer state (ANALYTICS-EVENTS.md section 1.3).
#[derive(Debug, Clone, Copy)]
pub struct ReducerLimits {
    pub connections: usize,
    pub threads: usize,
    pub turns: usize,
    pub requests: usize,
    pub request_ttl_ms: i64,
}

impl Default for ReducerLimits {
    fn default() -> Self {
        Self {
            connections: 1_024,
            threads: 10_000,
            turns: 10_000,
            requests: 10_000,
            request_ttl_ms: 10 * 60 * 1000,
        }
    }
}

#[derive(Debug, Clone)]
struct ConnectionState {
    client: AppServerClient,
    closed: bool,
    last_seen_ms: i64,
}

#[derive(Debug, Clone)]
struct ThreadState {
    connection: u64,
    session_id: String,
    ephemeral: bool,
    initialization_mode: &'static str,
    context: ThreadContext,
    config: TurnConfig,
    turns_seen: u32,
    last_seen_ms: i64,
}

/// The settings a turn runs with, as the client last set them.
#[derive(Debug, Clone)]
struct TurnConfig {
    model: String,
    model_provider: String,
    sandbox_policy: &'static str,
    sandbox_network_access: bool,
    approval_policy: &'static str,
    approvals_reviewer: &'static str,
    reasoning_effort: Option<String>,
    service_tier: Option<String>,
}

impl TurnConfig {
    fn apply(&mut self, o: TurnOverrides) {
        if let Some(model) = o.model {
            self.model = model;
        }
        if let Some(effort) = o.reasoning_effort {
            self.reasoning_effort = effort;
        }
        if let Some(policy) = o.approval_policy {
            self.approval_policy = policy;
        }
        if let Some(reviewer) = o.approvals_reviewer {
            self.approvals_reviewer = reviewer;
        }
        if let Some((policy, network)) = o.sandbox {
            self.sandbox_policy = policy;
            self.sandbox_network_access = network;
        }
    }
}

/// What a `turn/start` changes of its thread's settings: they hold for this turn and the later
/// ones (the TUI's `/model` switches the model this way).
#[derive(Debug, Clone, Default)]
struct TurnOverrides {
    model: Option<String>,
    reasoning_effort: Option<Option<String>>,
    approval_policy: Option<&'static str>,
    approvals_reviewer: Option<&'static str>,
    sandbox: Option<(&'static str, bool)>,
}

impl TurnOverrides {
    fn of(p: &TurnStartParams) -> Self {
        TurnOverrides {
            model: p.model.as_deref().map(identifier_or_other),
            reasoning_effort: p.effort.as_deref().map(identifier),
            approval_policy: p.approval_policy.as_ref().map(approval_policy_name),
            approvals_reviewer: p.approvals_reviewer.map(reviewer_name),
            sandbox: p
                .sandbox_policy
                .as_ref()
                .map(|s| (sandbox_policy_name(s), sandbox_network_access(s))),
        }
    }
}

#[derive(Debug, Clone)]
enum PendingClientRequest {
    TurnStart {
        thread_id: String,
        images: i64,
        overrides: TurnOverrides,
    },
    TurnSteer {
        thread_id: String,
        expected_turn_id: Option<String>,
        images: i64,
    },
    Interrupt {
        turn_id: String,
    },
    Archive {
        thread_id: String,
    },
}

#[derive(Debug, Clone, Default)]
struct Usage {
    input: i64,
    cached: i64,
    cache_write: i64,
    output: i64,
    reasoning: i64,
    total: i64,
}

impl Usage {
    /// Adds one sampling's usage. The counts come from the model backend, so they saturate
    /// rather than overflow (a panic here would end the reducer, and with it all analytics).
    fn add(&mut self, last: &TokenUsageBreakdown) {
        self.input = self.input.saturating_add(last.input_tokens);
        self.cached = self.cached.saturating_add(last.cached_input_tokens);
        self.cache_write = self
            .cache_write
            .saturating_add(last.cache_write_input_tokens);
        self.output = self.output.saturating_add(last.output_tokens);
        self.reasoning = self.reasoning.saturating_add(last.reasoning_output_tokens);
        self.total = self.total.saturating_add(last.total_tokens);
    }
}

#[derive(Debug, Clone)]
struct TurnState {
    connection: u64,
    thread_id: String,
    images: i64,
    config: TurnConfig,
    is_first_turn: bool,
    started_at_ms: i64,
    usage: Option<Usage>,
    sampling_requests: i64,
    sampling_retries: i64,
    /// Core's `TurnProfile` fact; absent on paths that send none (the event's profile is 0).
    profile: Option<TurnProfileFact>,
    counts: TurnToolCounts,
    interrupt_at_ms: Option<i64>,
    /// Hunk lines of the latest `turn/diff/updated` and the repository's hash.
    lines: TurnLines,
}

impl TurnState {
    /// A turn that starts now, with nothing counted yet.
    fn new(
        connection: u64,
        thread_id: &str,
        images: i64,
        config: TurnConfig,
        is_first_turn: bool,
        started_at_ms: i64,
    ) -> Self {
        TurnState {
            connection,
            thread_id: thread_id.to_string(),
            images,
            config,
            is_first_turn,
            started_at_ms,
            usage: None,
            sampling_requests: 0,
            sampling_retries: 0,
            profile: None,
            counts: TurnToolCounts::default(),
            interrupt_at_ms: None,
            lines: TurnLines::default(),
        }
    }
}

#[derive(Debug, Clone)]
struct PendingServerRequest {
    first_connection: u64,
    request: ServerRequest,
    delivery_count: i64,
    replayed: bool,
    requested_at_ms: i64,
}

/// Counters of state the reducer had to forget or could not join.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReducerStats {
    pub facts: u64,
    pub events: u64,
    /// Facts dropped because their context was unknown, by `event:reason`.
    pub missing_context: BTreeMap<String, u64>,
    /// Entries evicted at a cap or after a TTL, by map.
    pub evicted: BTreeMap<String, u64>,
}

/// Joins facts into events.
pub struct Reducer {
    limits: ReducerLimits,
    runtime: RuntimeInfo,
    connections: HashMap<u64, ConnectionState>,
    threads: HashMap<String, ThreadState>,
    requests: HashMap<(u64, RequestId), (i64, PendingClientRequest)>,
    turns: HashMap<String, TurnState>,
    server_requests: HashMap<RequestId, PendingServerRequest>,
    item_starts: HashMap<ItemKey, i64>,
    item_reviews: HashMap<ItemKey, ReviewSummary>,
    /// Compaction turns already reported: their `turn/completed` makes no `codex_turn_event`.
    compaction_turns: HashSet<String>,
    /// Turns a person's shell command opened: their items are reported, the turn is not.
    shell_turns: HashSet<String>,
    stats: ReducerStats,
}

/// (thread, turn, item).
type ItemKey = (String, String, String);

impl Reducer {
    /// A reducer stamping events with `runtime`.
    pub fn new(runtime: RuntimeInfo, limits: ReducerLimits) -> Self {
        Self {
            limits,
            runtime,
            connections: HashMap::new(),
            threads: HashMap::new(),
            requests: HashMap::new(),
            turns: HashMap::new(),
            server_requests: HashMap::new(),
            item_starts: HashMap::new(),
            item_reviews: HashMap::new(),
            compaction_turns: HashSet::new(),
            shell_turns: HashSet::new(),
            stats: ReducerStats::default(),
        }
    }

    /// What has been dropped or evicted so far.
    pub fn stats(&self) -> &ReducerStats {
        &self.stats
    }

    /// Ingests one fact and returns the events it completes (zero or more).
    pub fn ingest(&mut self, timed: TimedFact) -> Vec<AnalyticsEvent> {
        self.stats.facts += 1;
        let at = timed.at_ms;
        let events = match timed.fact {
            AnalyticsFact::Initialize { connection, client } => {
                self.on_initialize(connection, client, at);
                vec![]
            }
            AnalyticsFact::ConnectionClosed { connection } => {
                self.on_connection_closed(connection);
                vec![]
            }
            AnalyticsFact::ClientRequest {
                connection,
                request_id,
                request,
            } => {
                self.on_client_request(connection, request_id, request, at);
                vec![]
            }
            AnalyticsFact::ExplicitClientInterruptRequest {
                connection,
                request_id,
                turn_id,
            } => {
                self.remember_request(
                    connection,
                    request_id,
                    PendingClientRequest::Interrupt { turn_id },
                    at,
                );
                vec![]
            }
            AnalyticsFact::ClientResponse {
                connection,
                request_id,
                payload,
            } => self.on_client_response(connection, request_id, payload, at),
            AnalyticsFact::ErrorResponse {
                connection,
                request_id,
                steer_rejection,
                ..
            } => self.on_error_response(connection, request_id, steer_rejection),
            AnalyticsFact::Notification(n) => self.on_notification(n, at),
            AnalyticsFact::ServerRequest {
                connection,
                request_id,
                request,
                replayed,
            } => {
                self.on_server_request(connection, request_id, request, replayed, at);
                vec![]
            }
            AnalyticsFact::ServerResponse {
                connection,
                request_id,
                response,
            } => {
                self.on_server_answer(Some(connection), request_id, Answer::Response(response), at)
            }
            AnalyticsFact::ServerRequestEnded {
                connection,
                request_id,
                end,
            } => self.on_server_answer(connection, request_id, Answer::Ended(end), at),
            AnalyticsFact::GuardianReview(report) => self.on_guardian_review(&report),
            AnalyticsFact::Compaction(fact) => self.on_compaction(&fact),
            AnalyticsFact::UserShellTurn { thread_id, turn_id } => {
                self.shell_turn_started(&thread_id, turn_id, at);
                vec![]
            }
            AnalyticsFact::Goal(fact) => self.on_goal(&fact),
            AnalyticsFact::TurnRepository {
                turn_id, repo_hash, ..
            } => {
                if let Some(t) = self.turns.get_mut(&turn_id) {
                    t.lines.repo_hash = repo_hash;
                }
                vec![]
            }
            AnalyticsFact::TurnProfile {
                turn_id, profile, ..
            } => {
                if let Some(t) = self.turns.get_mut(&turn_id) {
                    t.profile = Some(profile);
                }
                vec![]
            }
            AnalyticsFact::TurnDiff {
                turn_id,
                added_lines,
                deleted_lines,
            } => {
                // The latest diff is the whole turn's: it replaces the counts, never adds to them.
                if let Some(t) = self.turns.get_mut(&turn_id) {
                    t.lines.added = added_lines;
                    t.lines.deleted = deleted_lines;
                }
                vec![]
            }
        };
        self.sweep(at);
        self.stats.events += events.len() as u64;
        events
    }

    fn missing(&mut self, event: &str, reason: &str) {
        *self
            .stats
            .missing_context
            .entry(format!("{event}:{reason}"))
            .or_default() += 1;
    }

    /// The process is stopping: what is still waiting for a fact that will not come (a turn
    /// without its completion, a client request without its answer, a server request without
    /// its resolution) will make no event; counted as evicted at shutdown.
    pub fn abandon(&mut self) {
        for (map, n) in [
            ("turns_at_shutdown", std::mem::take(&mut self.turns).len()),
            (
                "requests_at_shutdown",
                std::mem::take(&mut self.requests).len(),
            ),
            (
                "server_requests_at_shutdown",
                std::mem::take(&mut self.server_requests).len(),
            ),
        ] {
            self.evicted(map, n);
        }
    }

    fn evicted(&mut self, map: &str, n: usize) {
        if n > 0 {
            *self.stats.evicted.entry(map.to_string()).or_default() += n as u64;
        }
    }

    fn on_initialize(&mut self, connection: u64, c: ClientInfoFact, at: i64) {
        let client = AppServerClient {
            product_client_id: client_name(&c.client_name),
            client_name: client_name(&c.client_name),
            client_version: c.client_version.as_deref().and_then(identifier),
            rpc_transport: c.rpc_transport.as_str(),
            experimental_api_enabled: c.experimental_api_enabled,
        };
        self.connections.insert(
            connection,
            ConnectionState {
                client,
                closed: false,
                last_seen_ms: at,
            },
        );
    }

    fn on_connection_closed(&mut self, connection: u64) {
        if let Some(c) = self.connections.get_mut(&connection) {
            c.closed = true;
        }
        self.requests.retain(|(c, _), _| *c != connection);
    }

    fn remember_request(
        &mut self,
        connection: u64,
        id: RequestId,
        pending: PendingClientRequest,
        at: i64,
    ) {
        self.requests.insert((connection, id), (at, pending));
    }

    fn on_client_request(
        &mut self,
        connection: u64,
        id: RequestId,
        request: ClientRequest,
        at: i64,
    ) {
        let pending = match request {
            ClientRequest::TurnStart(p) => PendingClientRequest::TurnStart {
                images: count_images(&p.input),
                overrides: TurnOverrides::of(&p),
                thread_id: p.thread_id,
            },
            ClientRequest::TurnSteer(p) => PendingClientRequest::TurnSteer {
                images: count_images(&p.input),
                thread_id: p.thread_id,
                expected_turn_id: identifier(&p.expected_turn_id),
            },
            ClientRequest::ThreadArchive(p) => PendingClientRequest::Archive {
                thread_id: p.thread_id,
            },
            _ => return,
        };
        self.remember_request(connection, id, pending, at);
    }

    /// `codex_review_event` with reviewer `guardian`, from the review's completed notification.
    fn guardian_review_completed(
        &mut self,
        n: &tally_protocol::types::ItemGuardianApprovalReviewCompletedNotification,
    ) -> Vec<AnalyticsEvent> {
        use tally_protocol::types::{GuardianApprovalReviewAction, GuardianApprovalReviewStatus};
        let Some(thread) = self.threads.get(&n.thread_id) else {
            self.missing("codex_review_event", "unknown_thread");
            return vec![];
        };
        let context = thread.context.clone();
        let Some(client) = self.client_of(thread.connection) else {
            self.missing("codex_review_event", "unknown_connection");
            return vec![];
        };
        let status = match n.review.status {
            GuardianApprovalReviewStatus::Approved => "approved",
            GuardianApprovalReviewStatus::Denied => "denied",
            GuardianApprovalReviewStatus::TimedOut => "timed_out",
            GuardianApprovalReviewStatus::Aborted | GuardianApprovalReviewStatus::InProgress => {
                "aborted"
            }
        };
        let (subject_kind, subject_name) = match n.action {
            GuardianApprovalReviewAction::Command { .. } => {
                ("command_execution", "command_execution")
            }
            GuardianApprovalReviewAction::ApplyPatch { .. } => ("file_change", "apply_patch"),
        };
        if let Some(item) = &n.target_item_id {
            let key = (n.thread_id.clone(), n.turn_id.clone(), item.clone());
            let summary = self.item_reviews.entry(key).or_default();
            summary.guardian_reviews += 1;
            summary.last = Some((status, "none"));
            summary.last_by_guardian = true;
        }
        vec![AnalyticsEvent::Review(ReviewEvent {
            thread_id: n.thread_id.clone(),
            turn_id: n.turn_id.clone(),
            item_id: n.target_item_id.clone(),
            review_id: n.review_id.clone(),
            app_server_client: client,
            runtime: self.runtime.clone(),
            context,
            subject_kind,
            subject_name,
            reviewer: "guardian",
            trigger: "initial",
            status,
            resolution: "none",
            started_at_ms: n.started_at_ms,
            completed_at_ms: n.completed_at_ms,
            duration_ms: Some((n.completed_at_ms - n.started_at_ms).max(0)),
        })]
    }

    /// `codex_guardian_review`, attributed to the connection owning the reviewed thread.
    fn on_guardian_review(&mut self, report: &tally_guardian::ReviewReport) -> Vec<AnalyticsEvent> {
        const EVENT: &str = "codex_guardian_review";
        use crate::guardian_events as g;
        let Some((connection, reviewer)) = self
            .threads
            .get(&report.parent_thread_id)
            .map(|t| (t.connection, t.config.approvals_reviewer))
        else {
            self.missing(EVENT, "unknown_thread");
            return vec![];
        };
        let Some(client) = self.client_of(connection) else {
            self.missing(EVENT, "unknown_connection");
            return vec![];
        };
        // As Codex sends them: the reviewer thread, its turns, then the review.
        let mut events = Vec::new();
        if let Some(init) = g::reviewer_thread_initialized(report, &client, &self.runtime) {
            events.push(AnalyticsEvent::ThreadInitialized(init));
        }
        for turn in g::reviewer_turn_events(report, &client, &self.runtime, reviewer) {
            events.push(AnalyticsEvent::Turn(Box::new(turn)));
        }
        let event = g::guardian_review_event(report, client, self.runtime.clone());
        events.push(AnalyticsEvent::GuardianReview(Box::new(event)));
        events
    }

    /// The owning connection's client and the context of `thread_id`, for thread-scoped facts
    /// that come from core rather than from a connection.
    fn attribution(&mut self, event: &str, thread_id: &str) -> Option<Attribution> {
        let Some(thread) = self.threads.get(thread_id) else {
            self.missing(event, "unknown_thread");
            return None;
        };
        let (session_id, context) = (thread.session_id.clone(), thread.context.clone());
        let Some(client) = self.client_of(thread.connection) else {
            self.missing(event, "unknown_connection");
            return None;
        };
        Some(Attribution {
            session_id,
            client,
            runtime: self.runtime.clone(),
            context,
        })
    }

    /// `codex_compaction_event`; the compaction turn's `turn/completed` then makes no turn event.
    fn on_compaction(&mut self, fact: &CompactionFact) -> Vec<AnalyticsEvent> {
        self.compaction_turns.insert(fact.turn_id.clone());
        let Some(a) = self.attribution("codex_compaction_event", &fact.thread_id) else {
            return vec![];
        };
        vec![AnalyticsEvent::Compaction(Box::new(
            lifecycle::compaction_event(fact, a),
        ))]
    }

    /// `codex_goal_event`.
    fn on_goal(&mut self, fact: &GoalFact) -> Vec<AnalyticsEvent> {
        let Some(a) = self.attribution("codex_goal_event", &fact.thread_id) else {
            return vec![];
        };
        vec![AnalyticsEvent::Goal(lifecycle::goal_event(fact, a))]
    }

    fn client_of(&self, connection: u64) -> Option<AppServerClient> {
        self.connections.get(&connection).map(|c| c.client.clone())
    }

    fn on_client_response(
        &mut self,
        connection: u64,
        id: RequestId,
        payload: ClientResponsePayload,
        at: i64,
    ) -> Vec<AnalyticsEvent> {
        let pending = self.requests.remove(&(connection, id));
        match payload {
            ClientResponsePayload::ThreadStart(r) => {
                self.thread_initialized(connection, r, "new", at)
            }
            ClientResponsePayload::ThreadFork(r) => {
                self.thread_initialized(connection, r, "forked", at)
            }
            ClientResponsePayload::ThreadResume(r) => {
                self.thread_initialized(connection, r.session, "resumed", at)
            }
            ClientResponsePayload::TurnStart(r) => {
                match pending {
                    Some((
                        _,
                        PendingClientRequest::TurnStart {
                            thread_id,
                            images,
                            overrides,
                        },
                    )) => self
                        .turn_accepted(connection, &thread_id, &r.turn.id, images, overrides, at),
                    _ => self.missing("codex_turn_event", "turn_start_request_unknown"),
                }
                vec![]
            }
            ClientResponsePayload::TurnSteer(r) => match pending {
                Some((
                    created,
                    PendingClientRequest::TurnSteer {
                        thread_id,
                        expected_turn_id,
                        images,
                    },
                )) => {
                    if let Some(t) = self.turns.get_mut(&r.turn_id) {
                        t.counts.steer_count += 1;
                    }
                    self.steer_event(
                        connection,
                        &thread_id,
                        expected_turn_id,
                        Some(r.turn_id),
                        images,
                        None,
                        created,
                    )
                }
                _ => {
                    self.missing("codex_turn_steer_event", "steer_request_unknown");
                    vec![]
                }
            },
            // A review is a turn someone started, with the thread's settings.
            ClientResponsePayload::ReviewStart(r) => {
                self.turn_accepted(
                    connection,
                    &r.review_thread_id,
                    &r.turn.id,
                    0,
                    TurnOverrides::default(),
                    at,
                );
                vec![]
            }
            ClientResponsePayload::TurnInterrupt(_) => {
                if let Some((requested, PendingClientRequest::Interrupt { turn_id })) = pending {
                    if let Some(t) = self.turns.get_mut(&turn_id) {
                        t.interrupt_at_ms = Some(requested);
                    }
                }
                vec![]
            }
            ClientResponsePayload::ThreadArchive(_) => match pending {
                Some((_, PendingClientRequest::Archive { thread_id })) => {
                    vec![self.archive_event(connection, thread_id, "archived", at)]
                }
                _ => {
                    self.missing("codex_thread_archive_event", "archive_request_unknown");
                    vec![]
                }
            },
            ClientResponsePayload::ThreadUnarchive(r) => {
                vec![self.archive_event(connection, r.thread.id, "unarchived", at)]
            }
            _ => vec![],
        }
    }

    fn thread_initialized(
        &mut self,
        connection: u64,
        r: ThreadSessionResponse,
        mode: &'static str,
        at: i64,
    ) -> Vec<AnalyticsEvent> {
        let Some(client) = self.client_of(connection) else {
            self.missing("codex_thread_initialized", "connection_unknown");
            return vec![];
        };
        let t = &r.thread;
        let context = ThreadContext {
            thread_source: t.thread_source.as_deref().and_then(identifier),
            subagent_source: None,
            parent_thread_id: t.parent_thread_id.clone(),
        };
        let config = TurnConfig {
            model: identifier_or_other(&r.model),
            model_provider: identifier_or_other(&r.model_provider),
            sandbox_policy: sandbox_policy_name(&r.sandbox),
            sandbox_network_access: sandbox_network_access(&r.sandbox),
            approval_policy: approval_policy_name(&r.approval_policy),
            approvals_reviewer: reviewer_name(r.approvals_reviewer),
            reasoning_effort: r.reasoning_effort.as_deref().and_then(identifier),
            service_tier: r.service_tier.as_deref().and_then(identifier),
        };
        self.threads.insert(
            t.id.clone(),
            ThreadState {
                connection,
                session_id: t.session_id.clone(),
                ephemeral: t.ephemeral,
                initialization_mode: mode,
                context: context.clone(),
                config,
                turns_seen: t.turns.len() as u32,
                last_seen_ms: at,
            },
        );
        vec![AnalyticsEvent::ThreadInitialized(ThreadInitializedEvent {
            thread_id: t.id.clone(),
            session_id: t.session_id.clone(),
            app_server_client: client,
            runtime: self.runtime.clone(),
            model: identifier_or_other(&r.model),
            ephemeral: t.ephemeral,
            is_worktree: None,
            context,
            initialization_mode: mode,
            forked_from_thread_id: t.forked_from_id.clone(),
            created_at: t.created_at,
        })]
    }

    /// A turn a person's shell command opened: known, so its command's tool item is reported, but
    /// not a user turn (no `codex_turn_event`, not the thread's first turn).
    fn shell_turn_started(&mut self, thread_id: &str, turn_id: String, at: i64) {
        let Some(thread) = self.threads.get(thread_id) else {
            self.missing("tool_item_event", "thread_unknown");
            return;
        };
        let state = TurnState::new(
            thread.connection,
            thread_id,
            0,
            thread.config.clone(),
            false,
            at,
        );
        self.shell_turns.insert(turn_id.clone());
        self.turns.insert(turn_id, state);
    }

    fn turn_accepted(
        &mut self,
        connection: u64,
        thread_id: &str,
        turn_id: &str,
        images: i64,
        overrides: TurnOverrides,
        at: i64,
    ) {
        let Some(thread) = self.threads.get_mut(thread_id) else {
            self.missing("codex_turn_event", "thread_unknown");
            return;
        };
        // Accepted, so its settings are the thread's from now on, even when the input joined a
        // running turn.
        thread.config.apply(overrides);
        if self.turns.contains_key(turn_id) {
            // The input joined a running turn (turn/start during a turn acts as a steer).
            return;
        }
        thread.turns_seen += 1;
        thread.last_seen_ms = at;
        let state = TurnState::new(
            connection,
            thread_id,
            images,
            thread.config.clone(),
            thread.turns_seen == 1,
            at,
        );
        self.turns.insert(turn_id.to_string(), state);
    }

    #[allow(clippy::too_many_arguments)]
    fn steer_event(
        &mut self,
        connection: u64,
        thread_id: &str,
        expected: Option<String>,
        accepted: Option<String>,
        images: i64,
        rejection: Option<&'static str>,
        created_ms: i64,
    ) -> Vec<AnalyticsEvent> {
        let (Some(client), Some(thread)) =
            (self.client_of(connection), self.threads.get(thread_id))
        else {
            self.missing("codex_turn_steer_event", "context_unknown");
            return vec![];
        };
        vec![AnalyticsEvent::TurnSteer(TurnSteerEvent {
            thread_id: thread_id.to_string(),
            session_id: thread.session_id.clone(),
            expected_turn_id: expected,
            accepted_turn_id: accepted,
            app_server_client: client,
            runtime: self.runtime.clone(),
            context: thread.context.clone(),
            num_input_images: images,
            result: if rejection.is_some() {
                "rejected"
            } else {
                "accepted"
            },
            rejection_reason: rejection,
            created_at: created_ms / 1000,
        })]
    }

    fn archive_event(
        &mut self,
        connection: u64,
        thread_id: String,
        action: &'static str,
        at: i64,
    ) -> AnalyticsEvent {
        let thread = self.threads.get(&thread_id);
        let event = ThreadArchiveEvent {
            action,
            occurred_at_ms: at,
            app_server_client: self.client_of(connection),
            runtime: Some(self.runtime.clone()),
            thread_source: thread.and_then(|t| t.context.thread_source.clone()),
            parent_thread_id: thread.and_then(|t| t.context.parent_thread_id.clone()),
            thread_id,
        };
        if action == "archived" {
            self.threads.remove(&event.thread_id);
        }
        AnalyticsEvent::ThreadArchive(event)
    }

    fn on_error_response(
        &mut self,
        connection: u64,
        id: RequestId,
        steer_rejection: &'static str,
    ) -> Vec<AnalyticsEvent> {
        let Some((created, pending)) = self.requests.remove(&(connection, id)) else {
            return vec![];
        };
        match pending {
            PendingClientRequest::TurnSteer {
                thread_id,
                expected_turn_id,
                images,
            } => self.steer_event(
                connection,
                &thread_id,
                expected_turn_id,
                None,
                images,
                Some(steer_rejection),
                created,
            ),
            _ => vec![],
        }
    }

    fn on_notification(&mut self, n: ServerNotification, at: i64) -> Vec<AnalyticsEvent> {
        match n {
            ServerNotification::TurnStarted(TurnNotification { turn, .. }) => {
                if let Some(t) = self.turns.get_mut(&turn.id) {
                    t.started_at_ms = turn.started_at.map(|s| s * 1000).unwrap_or(t.started_at_ms);
                }
                vec![]
            }
            ServerNotification::ThreadTokenUsageUpdated(u) => {
                if let Some(t) = self.turns.get_mut(&u.turn_id) {
                    let last = u.token_usage.last;
                    t.usage.get_or_insert_with(Usage::default).add(&last);
                    t.sampling_requests += 1;
                }
                vec![]
            }
            ServerNotification::Error(e) => {
                if let Some(t) = self.turns.get_mut(&e.turn_id) {
                    if e.will_retry {
                        t.sampling_retries += 1;
                    }
                }
                vec![]
            }
            ServerNotification::ItemStarted(ItemStartedNotification {
                item,
                thread_id,
                turn_id,
                started_at_ms,
            }) => {
                self.item_starts
                    .insert((thread_id, turn_id, item.id().to_string()), started_at_ms);
                vec![]
            }
            ServerNotification::ItemCompleted(n) => self.tool_item_completed(n),
            ServerNotification::ItemGuardianApprovalReviewCompleted(n) => {
                self.guardian_review_completed(&n)
            }
            ServerNotification::TurnCompleted(done) => self.turn_completed(done, at),
            ServerNotification::HookCompleted(n) => self.hook_completed(&n),
            ServerNotification::ThreadClosed(n) => {
                self.release_thread(&n.thread_id);
                vec![]
            }
            _ => vec![],
        }
    }

    /// The thread left memory (idle unload): its state goes; a resume brings it back.
    fn release_thread(&mut self, thread_id: &str) {
        self.threads.remove(thread_id);
        self.turns.retain(|_, t| t.thread_id != thread_id);
        self.item_starts.retain(|(t, _, _), _| t != thread_id);
    }

    /// `codex_hook_run` for one handler run; the model is the turn's, else the thread's.
    fn hook_completed(&mut self, n: &HookRunNotification) -> Vec<AnalyticsEvent> {
        let turn = n.turn_id.as_ref().and_then(|t| self.turns.get(t));
        let thread = self.threads.get(&n.thread_id);
        let model = turn
            .map(|t| t.config.model.clone())
            .or_else(|| thread.map(|t| t.config.model.clone()));
        let connection = turn.map(|t| t.connection).or(thread.map(|t| t.connection));
        let client = connection
            .and_then(|c| self.client_of(c))
            .map(|c| c.product_client_id);
        vec![AnalyticsEvent::HookRun(crate::hook_events::hook_run_event(
            n, client, model,
        ))]
    }

    fn tool_item_completed(&mut self, n: ItemCompletedNotification) -> Vec<AnalyticsEvent> {
        let key = (
            n.thread_id.clone(),
            n.turn_id.clone(),
            n.item.id().to_string(),
        );
        let started = self.item_starts.remove(&key).unwrap_or(n.completed_at_ms);
        let review = self.item_reviews.remove(&key).unwrap_or_default();
        let (Some(name), Some(details)) =
            (tool_items::tool_name(&n.item), tool_items::details(&n.item))
        else {
            return vec![];
        };
        let Some(turn) = self.turns.get_mut(&n.turn_id) else {
            self.missing("tool_item_event", "turn_unknown");
            return vec![];
        };
        tool_items::count(&mut turn.counts, &n.item);
        let turn = turn.clone();
        let (Some(client), Some(thread)) = (
            self.client_of(turn.connection),
            self.threads.get(&n.thread_id),
        ) else {
            self.missing("tool_item_event", "context_unknown");
            return vec![];
        };
        let (terminal_status, failure_kind) =
            tool_items::terminal(&n.item, &review, turn.interrupt_at_ms.is_some());
        let execution = match &details {
            ToolDetails::Command { duration_ms, .. } | ToolDetails::Dynamic { duration_ms, .. } => {
                *duration_ms
            }
            ToolDetails::FileChange { .. } => None,
        };
        let base = ToolItemBase {
            thread_id: n.thread_id.clone(),
            session_id: thread.session_id.clone(),
            turn_id: n.turn_id.clone(),
            root_turn_id: n.turn_id.clone(),
            item_id: n.item.id().to_string(),
            cell_id: None,
            parent_call_id: None,
            originating_response_id: None,
            subsequent_response_id: None,
            app_server_client: client,
            runtime: self.runtime.clone(),
            context: thread.context.clone(),
            tool_name: name,
            tool_event_type: "model_tool_call",
            started_at_ms: started,
            completed_at_ms: n.completed_at_ms,
            duration_ms: Some((n.completed_at_ms - started).max(0)),
            execution_duration_ms: execution,
            review_count: review.user_reviews + review.guardian_reviews,
            guardian_review_count: review.guardian_reviews,
            user_review_count: review.user_reviews,
            final_approval_outcome: tool_items::final_outcome(&n.item, &review),
            terminal_status,
            failure_kind,
            requested_additional_permissions: false,
            requested_network_access: false,
        };
        vec![tool_event(base, details, &turn.config)]
    }

    fn turn_completed(&mut self, done: TurnNotification, at: i64) -> Vec<AnalyticsEvent> {
        // Items of a finished turn can no longer complete; forget their starts and reviews.
        self.item_starts
            .retain(|(_, turn, _), _| *turn != done.turn.id);
        self.item_reviews
            .retain(|(_, turn, _), _| *turn != done.turn.id);
        if self.shell_turns.remove(&done.turn.id) {
            // A person's shell command: its tool item was the event.
            self.turns.remove(&done.turn.id);
            return vec![];
        }
        if self.compaction_turns.remove(&done.turn.id) {
            // A compaction is reported by `codex_compaction_event`, not as a user turn.
            return vec![];
        }
        let Some(turn) = self.turns.remove(&done.turn.id) else {
            self.missing("codex_turn_event", "turn_unknown");
            return vec![];
        };
        let (Some(client), Some(thread)) = (
            self.client_of(turn.connection),
            self.threads.get(&turn.thread_id),
        ) else {
            self.missing("codex_turn_event", "context_unknown");
            return vec![];
        };
        let status = match done.turn.status {
            TurnStatus::Completed => "completed",
            TurnStatus::Interrupted => "interrupted",
            TurnStatus::Failed => "failed",
            TurnStatus::InProgress => "in_progress",
        };
        let (error_kind, error_status) = error_class(
            done.turn
                .error
                .as_ref()
                .and_then(|e| e.codex_error_info.as_ref()),
        );
        let turn_error = done.turn.error.as_ref().map(|_| TurnErrorClass {
            codex_error_kind: error_kind.clone(),
            http_status_code: error_status,
        });
        let usage = turn.usage.clone();
        // Without core's profile (an older path), the buckets are 0 and the counts come from
        // the notifications: usage updates per sampling, errors that will retry.
        let profile = turn.profile.unwrap_or(TurnProfileFact {
            sampling_request_count: turn.sampling_requests,
            sampling_retry_count: turn.sampling_retries,
            ..TurnProfileFact::default()
        });
        let duration_ms = done.turn.duration_ms.or(Some(at - turn.started_at_ms));
        let c = &turn.config;
        let event = TurnEvent {
            thread_id: turn.thread_id.clone(),
            session_id: thread.session_id.clone(),
            turn_id: done.turn.id.clone(),
            root_turn_id: done
                .turn
                .root_turn_id
                .clone()
                .unwrap_or_else(|| done.turn.id.clone()),
            app_server_client: client,
            runtime: self.runtime.clone(),
            context: thread.context.clone(),
            ephemeral: thread.ephemeral,
            initialization_mode: thread.initialization_mode,
            critical_path_status: "disabled",
            critical_path_duration_ms: None,
            critical_path_inference_ms: None,
            critical_path_sampling_ms: None,
            critical_path_compaction_ms: None,
            critical_path_auto_review_ms: None,
            critical_path_auto_review_overhead_ms: None,
            critical_path_user_wait_ms: None,
            critical_path_tools_ms: None,
            critical_path_overhead_ms: None,
            critical_path_unknown_ms: None,
            active_plugin_ids_at_turn_start: vec![],
            image_preparations: vec![],
            voice_session_id: None,
            turn_trigger: None,
            codex_turn_source: None,
            submission_type: None,
            workspace_kind: None,
            personality: None,
            model: c.model.clone(),
            model_provider: c.model_provider.clone(),
            sandbox_policy: c.sandbox_policy,
            reasoning_effort: c.reasoning_effort.clone(),
            reasoning_summary: Some("auto".into()),
            service_tier: c.service_tier.clone().unwrap_or_else(|| "default".into()),
            approval_policy: c.approval_policy.to_string(),
            approvals_reviewer: c.approvals_reviewer,
            guardian_v2_enabled: false,
            sandbox_network_access: c.sandbox_network_access,
            is_first_turn: turn.is_first_turn,
            multi_agent_version: "v1",
            collaboration_mode: "default",
            num_input_images: turn.images,
            status,
            explicit_client_interrupt_requested_at_ms: turn.interrupt_at_ms,
            turn_error,
            codex_error_kind: error_kind,
            codex_error_http_status_code: error_status,
            usage_limit_window_minutes: None,
            counts: turn.counts.clone(),
            input_tokens: usage.as_ref().map(|u| u.input),
            cached_input_tokens: usage.as_ref().map(|u| u.cached),
            cache_write_input_tokens: usage.as_ref().map(|u| u.cache_write),
            output_tokens: usage.as_ref().map(|u| u.output),
            reasoning_output_tokens: usage.as_ref().map(|u| u.reasoning),
            total_tokens: usage.as_ref().map(|u| u.total),
            before_first_sampling_ms: profile.before_first_sampling_ms,
            sampling_ms: profile.sampling_ms,
            compaction_ms: profile.compaction_ms,
            between_sampling_overhead_ms: profile.between_sampling_overhead_ms,
            tool_blocking_ms: profile.tool_blocking_ms,
            after_last_sampling_ms: profile.after_last_sampling_ms,
            sampling_request_count: profile.sampling_request_count,
            sampling_retry_count: profile.sampling_retry_count,
            tools_change_count: profile.tools_change_count,
            duration_ms,
            started_at: done.turn.started_at.or(Some(turn.started_at_ms / 1000)),
            completed_at: done.turn.completed_at.or(Some(at / 1000)),
        };
        let lines = lifecycle::accepted_lines_event(
            &event.thread_id,
            &event.turn_id,
            &event.model,
            event.completed_at.unwrap_or(at / 1000),
            &turn.lines,
        );
        let mut events = vec![AnalyticsEvent::Turn(Box::new(event))];
        events.extend(lines.map(AnalyticsEvent::AcceptedLineFingerprints));
        events
    }

    fn on_server_request(
        &mut self,
        connection: u64,
        id: RequestId,
        request: ServerRequest,
        replayed: bool,
        at: i64,
    ) {
        match self.server_requests.get_mut(&id) {
            Some(p) => {
                p.delivery_count += 1;
                p.replayed |= replayed;
            }
            None => {
                self.server_requests.insert(
                    id,
                    PendingServerRequest {
                        first_connection: connection,
                        request,
                        delivery_count: 1,
                        replayed,
                        requested_at_ms: at,
                    },
                );
            }
        }
    }

    fn on_server_answer(
        &mut self,
        responder: Option<u64>,
        id: RequestId,
        answer: Answer,
        at: i64,
    ) -> Vec<AnalyticsEvent> {
        let Some(p) = self.server_requests.remove(&id) else {
            self.missing("codex_server_request_event", "request_unknown");
            return vec![];
        };
        let attributed = responder.unwrap_or(p.first_connection);
        let Some(client) = self
            .client_of(attributed)
            .or_else(|| self.client_of(p.first_connection))
        else {
            self.missing("codex_server_request_event", "connection_unknown");
            return vec![];
        };
        let (thread_id, turn_id, item_id) = request_ids(&p.request);
        let (outcome, class, error_code) = match &answer {
            Answer::Response(r) => ("responded", classify_response(r), None),
            Answer::Ended(end) => {
                let none = DecisionClass {
                    decision: None,
                    review: Some(("aborted", "none")),
                    tool_success: None,
                };
                match end {
                    ServerRequestEnd::ErrorResponse { code } => (
                        "error_response",
                        DecisionClass {
                            review: Some(("denied", "none")),
                            ..none
                        },
                        Some(*code),
                    ),
                    ServerRequestEnd::DecodeFailed => (
                        "decode_failed",
                        DecisionClass {
                            review: Some(("denied", "none")),
                            ..none
                        },
                        None,
                    ),
                    ServerRequestEnd::Aborted => ("aborted", none, None),
                    ServerRequestEnd::ConnectionClosed => ("connection_closed", none, None),
                }
            }
        };
        let mut events = Vec::with_capacity(2);
        if let (Some((kind, name)), Some((status, resolution)), Some(thread), Some(turn)) = (
            review_subject(&p.request),
            class.review,
            &thread_id,
            &turn_id,
        ) {
            let started = review_started_at_ms(&p.request).unwrap_or(p.requested_at_ms);
            if let Some(item) = &item_id {
                let key = (thread.clone(), turn.clone(), item.clone());
                let summary = self.item_reviews.entry(key).or_default();
                summary.user_reviews += 1;
                summary.last = Some((status, resolution));
                summary.last_by_guardian = false;
            }
            let context = self
                .threads
                .get(thread)
                .map(|t| t.context.clone())
                .unwrap_or_default();
            events.push(AnalyticsEvent::Review(ReviewEvent {
                thread_id: thread.clone(),
                turn_id: turn.clone(),
                item_id: item_id.clone(),
                review_id: format!("user:{}", request_id_text(&id)),
                app_server_client: client.clone(),
                runtime: self.runtime.clone(),
                context,
                subject_kind: kind,
                subject_name: name,
                reviewer: "user",
                trigger: "initial",
                status,
                resolution,
                started_at_ms: started,
                completed_at_ms: at,
                duration_ms: Some((at - started).max(0)),
            }));
        }
        events.push(AnalyticsEvent::ServerRequest(ServerRequestEvent {
            thread_id,
            turn_id,
            item_id,
            request_method: p.request.method(),
            delivery: if p.replayed { "replayed" } else { "targeted" },
            delivery_count: p.delivery_count,
            outcome,
            decision: class.decision,
            tool_success: class.tool_success,
            error_code,
            answered_by_original_connection: responder.map(|r| r == p.first_connection),
            app_server_client: client,
            runtime: self.runtime.clone(),
            requested_at_ms: p.requested_at_ms,
            resolved_at_ms: at,
            latency_ms: (at - p.requested_at_ms).max(0),
        }));
        events
    }

    /// Applies TTLs and caps; cheap enough to run per fact because maps are small and capped.
    fn sweep(&mut self, now: i64) {
        let ttl = self.limits.request_ttl_ms;
        let before = self.requests.len();
        self.requests.retain(|_, (t, _)| now - *t < ttl);
        let n = before - self.requests.len();
        self.evicted("requests_ttl", n);
        let n = cap_oldest(&mut self.requests, self.limits.requests, |(t, _)| *t);
        self.evicted("requests_cap", n);
        let n = cap_oldest(&mut self.turns, self.limits.turns, |t| t.started_at_ms);
        self.evicted("turns_incomplete", n);
        let n = cap_oldest(&mut self.threads, self.limits.threads, |t| t.last_seen_ms);
        self.evicted("threads", n);
        let n = cap_oldest(&mut self.server_requests, self.limits.requests, |p| {
            p.requested_at_ms
        });
        self.evicted("server_requests", n);
        let n = cap_oldest(&mut self.item_starts, self.limits.requests, |t| *t);
        self.evicted("item_starts", n);
        if self.compaction_turns.len() > self.limits.turns {
            let n = self.compaction_turns.len();
            self.compaction_turns.clear();
            self.evicted("compaction_turns", n);
        }
        if self.shell_turns.len() > self.limits.turns {
            let n = self.shell_turns.len();
            self.shell_turns.clear();
            self.evicted("shell_turns", n);
        }
        if self.item_reviews.len() > self.limits.requests {
            let n = self.item_reviews.len();
            self.item_reviews.clear();
            self.evicted("item_reviews", n);
        }
        if self.connections.len() > self.limits.connections {
            let live: std::collections::HashSet<u64> =
                self.threads.values().map(|t| t.connection).collect();
            let before = self.connections.len();
            self.connections
                .retain(|id, c| !c.closed || live.contains(id));
            let n = before - self.connections.len();
            self.evicted("connections_closed", n);
            let n = cap_oldest(&mut self.connections, self.limits.connections, |c| {
                c.last_seen_ms
            });
            self.evicted("connections_cap", n);
        }
    }
}

enum Answer {
    Response(tally_protocol::ServerResponse),
    Ended(ServerRequestEnd),
}

/// Removes the oldest entries beyond `cap`; returns how many.
fn cap_oldest<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    cap: usize,
    age: impl Fn(&V) -> i64,
) -> usize {
    if map.len() <= cap {
        return 0;
    }
    let excess = map.len() - cap;
    let mut by_age: Vec<(i64, K)> = map.iter().map(|(k, v)| (age(v), k.clone())).collect();
    by_age.sort_by_key(|(t, _)| *t);
    for (_, k) in by_age.into_iter().take(excess) {
        map.remove(&k);
    }
    excess
}

fn request_id_text(id: &RequestId) -> String {
    match id {
        RequestId::Integer(n) => n.to_string(),
        RequestId::String(s) => identifier_or_other(s),
    }
}

#[cfg(test)]
#[path = "reducer_tests.rs"]
mod tests;

/// Assembles a tool item's event from the shared base, its details and the turn's settings.
fn tool_event(base: ToolItemBase, details: ToolDetails, config: &TurnConfig) -> AnalyticsEvent {
    match details {
        ToolDetails::Command {
            source,
            exit_code,
            actions,
            ran,
            ..
        } => AnalyticsEvent::CommandExecution(Box::new(CommandExecutionEvent {
            base,
            sandbox_backend: ran.then_some(match config.sandbox_policy {
                "full_access" | "external_sandbox" => "none",
                _ => "landlock",
            }),
            model_slug: config.model.clone(),
            reasoning_effort: config.reasoning_effort.clone(),
            plugin_id: None,
            script_path: None,
            command_execution_source: source,
            exit_code,
            command_total_action_count: actions.total,
            command_read_action_count: actions.read,
            command_list_files_action_count: actions.list_files,
            command_search_action_count: actions.search,
            command_unknown_action_count: actions.unknown,
        })),
        ToolDetails::FileChange {
            adds,
            updates,
            deletes,
            moves,
        } => AnalyticsEvent::FileChange(Box::new(FileChangeEvent {
            base,
            file_change_count: adds + updates + deletes + moves,
            file_add_count: adds,
            file_update_count: updates,
            file_delete_count: deletes,
            file_move_count: moves,
        })),
        ToolDetails::Dynamic {
            name,
            success,
            outputs,
            ..
        } => AnalyticsEvent::DynamicToolCall(Box::new(DynamicToolCallEvent {
            base,
            dynamic_tool_name: name,
            success,
            output_content_item_count: outputs.map(|o| o.total),
            output_text_item_count: outputs.map(|o| o.text),
            output_image_item_count: outputs.map(|o| o.image),
            output_audio_item_count: outputs.map(|o| o.audio),
        })),
    }
}

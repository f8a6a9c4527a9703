//! Request handlers, one module per method family, and the table that maps a method to its handler.
//! Each handler returns a typed `ClientResponsePayload`; it never serializes or sends the response.

mod account;
mod config;
mod goal;
mod hooks;
mod model;
mod plugins;
mod skills;
mod thread;
mod turn;

use crate::connection::{ConnectionId, SessionInfo};
use crate::outgoing::OutgoingMessageSender;
use futures::future::BoxFuture;
use std::sync::Arc;
use tally_core::{Config, ThreadManager};
use tally_protocol::{ClientRequest, ClientResponsePayload, JsonRpcErrorBody};

/// What a handler can reach.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub connection: ConnectionId,
    pub session: Arc<SessionInfo>,
    pub outgoing: Arc<OutgoingMessageSender>,
    pub threads: Arc<ThreadManager>,
    pub config: Arc<Config>,
    pub auth: Arc<tally_auth::AuthManager>,
}

/// Work that must happen right after the response is sent (notifications that follow it).
pub(crate) type AfterSend = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

/// A successful handler result: the typed payload and what follows it.
pub(crate) struct HandlerReply {
    pub payload: ClientResponsePayload,
    pub after_send: Option<AfterSend>,
}

impl From<ClientResponsePayload> for HandlerReply {
    fn from(payload: ClientResponsePayload) -> Self {
        Self {
            payload,
            after_send: None,
        }
    }
}

impl HandlerReply {
    fn then(payload: ClientResponsePayload, after: AfterSend) -> Self {
        Self {
            payload,
            after_send: Some(after),
        }
    }

    /// The reply, then `gate` opened: what waits on it (a new turn's notifications, an
    /// interrupted turn's end) comes after the response.
    fn then_open(
        payload: ClientResponsePayload,
        gate: Option<tokio::sync::oneshot::Sender<()>>,
    ) -> Self {
        match gate {
            Some(gate) => Self::then(
                payload,
                Box::new(move || {
                    Box::pin(async move {
                        let _ = gate.send(());
                    })
                }),
            ),
            None => payload.into(),
        }
    }
}

pub(crate) type HandlerResult = Result<HandlerReply, JsonRpcErrorBody>;

/// The method table: every client request goes to exactly one handler.
pub(crate) async fn dispatch(ctx: Ctx, request: ClientRequest) -> HandlerResult {
    match request {
        ClientRequest::Initialize(_) => {
            Err(JsonRpcErrorBody::invalid_request("Already initialized"))
        }
        ClientRequest::ThreadStart(p) => thread::start(&ctx, p).await,
        ClientRequest::ThreadResume(p) => thread::resume(&ctx, p).await,
        ClientRequest::ThreadFork(p) => thread::fork(&ctx, p).await,
        ClientRequest::ThreadList(p) => thread::list(&ctx, p).await,
        ClientRequest::ThreadRead(p) => thread::read(&ctx, p).await,
        ClientRequest::ThreadLoadedList(p) => thread::loaded_list(&ctx, p).await,
        ClientRequest::ThreadTurnsList(p) => thread::turns_list(&ctx, p).await,
        ClientRequest::ThreadItemsList(p) => thread::items_list(&ctx, p).await,
        ClientRequest::ThreadArchive(p) => thread::archive(&ctx, p).await,
        ClientRequest::ThreadUnarchive(p) => thread::unarchive(&ctx, p).await,
        ClientRequest::ThreadUnsubscribe(p) => thread::unsubscribe(&ctx, p).await,
        ClientRequest::ThreadCompactStart(p) => thread::compact_start(&ctx, p).await,
        ClientRequest::ThreadGoalSet(p) => goal::set(&ctx, p).await,
        ClientRequest::ThreadGoalGet(p) => goal::get(&ctx, p).await,
        ClientRequest::ThreadGoalClear(p) => goal::clear(&ctx, p).await,
        ClientRequest::ThreadNameSet(p) => thread::name_set(&ctx, p).await,
        ClientRequest::ThreadShellCommand(p) => thread::shell_command(&ctx, p).await,
        ClientRequest::TurnStart(p) => turn::start(&ctx, p).await,
        ClientRequest::TurnSteer(p) => turn::steer(&ctx, p).await,
        ClientRequest::TurnInterrupt(p) => turn::interrupt(&ctx, p).await,
        ClientRequest::ReviewStart(p) => turn::review(&ctx, p).await,
        ClientRequest::ModelList(p) => model::list(&ctx, p).await,
        ClientRequest::ConfigRead(p) => config::read(&ctx, p).await,
        ClientRequest::ConfigRequirementsRead(_) => config::requirements(&ctx).await,
        ClientRequest::ConfigBatchWrite(p) => config::batch_write(&ctx, p).await,
        ClientRequest::HooksList(p) => hooks::list(&ctx, p).await,
        ClientRequest::AccountRead(p) => account::read(&ctx, p).await,
        ClientRequest::AccountLoginStart(p) => account::login_start(&ctx, p).await,
        ClientRequest::AccountLogout(_) => account::logout(&ctx).await,
        ClientRequest::SkillsList(p) => skills::list(&ctx, p).await,
        ClientRequest::PluginInstalled(_) => plugins::installed(&ctx).await,
        ClientRequest::McpServerStatusList(_) => plugins::mcp_server_status(&ctx).await,
    }
}

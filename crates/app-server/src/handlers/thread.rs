//! `thread/*` handlers.

use super::{Ctx, HandlerReply, HandlerResult};
use crate::error_map::core_error;
use tally_protocol::server_notification::*;
use tally_protocol::types::*;
use tally_protocol::{ClientResponsePayload as P, JsonRpcErrorBody, ServerNotification as N};

/// Registers the thread's agent task in the background (agent identity on), or finds the one its
/// rollout kept (a resume; a fork registers its own), so its first model request is already
/// signed; a request that comes first waits for it within a deadline.
fn prewarm_agent_task(ctx: &Ctx, thread_id: &str) {
    if ctx.auth.agent_identity().is_some() {
        let auth = ctx.auth.clone();
        let thread_id = thread_id.to_owned();
        tokio::spawn(async move { auth.prewarm_thread_task(&thread_id).await });
    }
}

pub(crate) async fn start(ctx: &Ctx, p: ThreadStartParams) -> HandlerResult {
    if p.dynamic_tools.is_some() && !ctx.session.experimental_api {
        return Err(JsonRpcErrorBody::invalid_request(
            "thread/start.dynamicTools requires experimentalApi capability",
        ));
    }
    let response = ctx
        .threads
        .start_thread(p, &ctx.session.client)
        .map_err(core_error)?;
    ctx.outgoing
        .registry()
        .subscribe(ctx.connection, &response.thread.id);
    prewarm_agent_task(ctx, &response.thread.id);
    let started = N::ThreadStarted(ThreadStartedNotification {
        thread: response.thread.clone(),
    });
    let outgoing = ctx.outgoing.clone();
    let thread_id = response.thread.id.clone();
    Ok(HandlerReply::then(
        P::ThreadStart(response),
        Box::new(move || {
            Box::pin(async move {
                outgoing
                    .send_thread_notification(&thread_id, &started)
                    .await
            })
        }),
    ))
}

pub(crate) async fn resume(ctx: &Ctx, p: ThreadResumeParams) -> HandlerResult {
    let hydrated = !p.exclude_turns;
    let response = ctx
        .threads
        .resume_thread(p, &ctx.session.client)
        .map_err(core_error)?;
    let thread = &response.session.thread;
    ctx.outgoing
        .registry()
        .subscribe(ctx.connection, &thread.id);
    prewarm_agent_task(ctx, &thread.id);
    if hydrated {
        send_history_deprecation(ctx).await;
    }
    let status = N::ThreadStatusChanged(ThreadStatusChangedNotification {
        thread_id: thread.id.clone(),
        status: thread.status.clone(),
    });
    ctx.outgoing
        .send_notification(ctx.connection, &status)
        .await;
    let (outgoing, connection) = (ctx.outgoing.clone(), ctx.connection);
    let thread_id = thread.id.clone();
    let goal = super::goal::snapshot(&thread_id, ctx.threads.get_goal(&thread_id));
    Ok(HandlerReply::then(
        P::ThreadResume(response),
        // The goal snapshot, then requests still waiting for an answer (with their original ids),
        // follow the response.
        Box::new(move || {
            Box::pin(async move {
                if let Some(goal) = goal {
                    outgoing.send_notification(connection, &goal).await;
                }
                outgoing.replay_pending(&thread_id, connection).await
            })
        }),
    ))
}

pub(crate) async fn fork(ctx: &Ctx, p: ThreadForkParams) -> HandlerResult {
    let hydrated = !p.exclude_turns;
    let response = ctx
        .threads
        .fork_thread(p, &ctx.session.client)
        .map_err(core_error)?;
    let thread_id = response.thread.id.clone();
    ctx.outgoing
        .registry()
        .subscribe(ctx.connection, &thread_id);
    prewarm_agent_task(ctx, &thread_id);
    if hydrated {
        send_history_deprecation(ctx).await;
    }
    let full = ctx
        .threads
        .read_thread(&thread_id, true)
        .map_err(core_error)?;
    let usage = full.turns.last().map(|t| {
        N::ThreadTokenUsageUpdated(ThreadTokenUsageUpdatedNotification {
            thread_id: thread_id.clone(),
            turn_id: t.id.clone(),
            token_usage: ctx.threads.token_usage(&thread_id).unwrap_or_default(),
        })
    });
    // `Thread.turns` is filled only in responses (resume, fork, read); notifications carry none.
    let started = N::ThreadStarted(ThreadStartedNotification {
        thread: Thread {
            turns: Vec::new(),
            ..response.thread.clone()
        },
    });
    let outgoing = ctx.outgoing.clone();
    Ok(HandlerReply::then(
        P::ThreadFork(response),
        Box::new(move || {
            Box::pin(async move {
                if let Some(u) = usage {
                    outgoing.send_thread_notification(&thread_id, &u).await;
                }
                outgoing
                    .send_thread_notification(&thread_id, &started)
                    .await;
            })
        }),
    ))
}

async fn send_history_deprecation(ctx: &Ctx) {
    let notice = N::DeprecationNotice(DeprecationNoticeNotification {
        summary: "Full thread history hydration is deprecated; pass excludeTurns: true and page with thread/turns/list.".into(),
        details: None,
    });
    ctx.outgoing
        .send_notification(ctx.connection, &notice)
        .await;
}

pub(crate) async fn list(ctx: &Ctx, p: ThreadListParams) -> HandlerResult {
    let response = ctx.threads.list_threads(&p).map_err(core_error)?;
    Ok(P::ThreadList(response).into())
}

pub(crate) async fn read(ctx: &Ctx, p: ThreadReadParams) -> HandlerResult {
    let thread = ctx
        .threads
        .read_thread(&p.thread_id, p.include_turns)
        .map_err(core_error)?;
    Ok(P::ThreadRead(ThreadResponse { thread }).into())
}

pub(crate) async fn loaded_list(ctx: &Ctx, p: ThreadLoadedListParams) -> HandlerResult {
    let mut ids = ctx.threads.loaded_thread_ids();
    if let Some(cursor) = &p.cursor {
        ids.retain(|id| id > cursor);
    }
    let limit = p.limit.map(|l| l.max(1) as usize).unwrap_or(usize::MAX);
    let next_cursor = (ids.len() > limit).then(|| ids[limit - 1].clone());
    ids.truncate(limit);
    Ok(P::ThreadLoadedList(ThreadLoadedListResponse {
        data: ids,
        next_cursor,
    })
    .into())
}

pub(crate) async fn archive(ctx: &Ctx, p: ThreadIdParams) -> HandlerResult {
    ctx.threads.settle_ending_turn(&p.thread_id).await;
    let registry = ctx.outgoing.registry();
    let mut audience = registry.subscribers(&p.thread_id, "thread/archived");
    // The thread leaves this process: its session ends (SessionEnd hooks) while its
    // subscribers can still hear about it.
    ctx.threads.end_session(&p.thread_id).await;
    ctx.threads
        .archive_thread(&p.thread_id)
        .map_err(core_error)?;
    let status = N::ThreadStatusChanged(ThreadStatusChangedNotification {
        thread_id: p.thread_id.clone(),
        status: ThreadStatus::NotLoaded,
    });
    ctx.outgoing
        .send_thread_notification(&p.thread_id, &status)
        .await;
    registry.clear_thread(&p.thread_id);
    if !audience.contains(&ctx.connection) {
        audience.push(ctx.connection);
    }
    let archived = N::ThreadArchived(ThreadIdNotification {
        thread_id: p.thread_id,
    });
    let outgoing = ctx.outgoing.clone();
    Ok(HandlerReply::then(
        P::ThreadArchive(EmptyResponse {}),
        Box::new(move || {
            Box::pin(async move {
                for connection in audience {
                    outgoing.send_notification(connection, &archived).await;
                }
            })
        }),
    ))
}

pub(crate) async fn unarchive(ctx: &Ctx, p: ThreadIdParams) -> HandlerResult {
    let thread = ctx
        .threads
        .unarchive_thread(&p.thread_id)
        .map_err(core_error)?;
    let unarchived = N::ThreadUnarchived(ThreadIdNotification {
        thread_id: p.thread_id,
    });
    let (outgoing, connection) = (ctx.outgoing.clone(), ctx.connection);
    Ok(HandlerReply::then(
        P::ThreadUnarchive(ThreadResponse { thread }),
        Box::new(move || {
            Box::pin(async move { outgoing.send_notification(connection, &unarchived).await })
        }),
    ))
}

pub(crate) async fn unsubscribe(ctx: &Ctx, p: ThreadIdParams) -> HandlerResult {
    let status = if !ctx.threads.is_loaded(&p.thread_id) {
        ThreadUnsubscribeStatus::NotLoaded
    } else if ctx
        .outgoing
        .registry()
        .unsubscribe(ctx.connection, &p.thread_id)
    {
        ThreadUnsubscribeStatus::Unsubscribed
    } else {
        ThreadUnsubscribeStatus::NotSubscribed
    };
    Ok(P::ThreadUnsubscribe(ThreadUnsubscribeResponse { status }).into())
}

pub(crate) async fn compact_start(ctx: &Ctx, p: ThreadIdParams) -> HandlerResult {
    ctx.threads.settle_ending_turn(&p.thread_id).await;
    let gate = ctx
        .threads
        .compact_thread(&p.thread_id)
        .map_err(core_error)?;
    // The compaction turn waits for this response before `turn/started`.
    Ok(HandlerReply::then_open(
        P::ThreadCompactStart(EmptyResponse {}),
        Some(gate),
    ))
}

pub(crate) async fn turns_list(ctx: &Ctx, p: ThreadTurnsListParams) -> HandlerResult {
    let thread = ctx
        .threads
        .read_thread(&p.thread_id, true)
        .map_err(core_error)?;
    let response = crate::pages::turns_page(thread.turns, &p)
        .map_err(|e| JsonRpcErrorBody::invalid_params(e.0))?;
    Ok(P::ThreadTurnsList(response).into())
}

pub(crate) async fn items_list(ctx: &Ctx, p: ThreadItemsListParams) -> HandlerResult {
    let thread = ctx
        .threads
        .read_thread(&p.thread_id, true)
        .map_err(core_error)?;
    let response = crate::pages::items_page(thread.turns, &p)
        .map_err(|e| JsonRpcErrorBody::invalid_params(e.0))?;
    Ok(P::ThreadItemsList(response).into())
}

pub(crate) async fn name_set(ctx: &Ctx, p: ThreadSetNameParams) -> HandlerResult {
    let name = ctx.threads.set_thread_name(&p).map_err(core_error)?;
    // The thread's subscribers hear it, and the caller even when it is not one of them.
    let caller = ctx.connection;
    let caller_subscribed = ctx
        .outgoing
        .registry()
        .request_targets(&p.thread_id)
        .contains(&caller);
    let updated = N::ThreadNameUpdated(ThreadNameUpdatedNotification {
        thread_id: p.thread_id.clone(),
        thread_name: Some(name),
    });
    let outgoing = ctx.outgoing.clone();
    let thread_id = p.thread_id;
    Ok(HandlerReply::then(
        P::ThreadNameSet(EmptyResponse {}),
        Box::new(move || {
            Box::pin(async move {
                outgoing
                    .send_thread_notification(&thread_id, &updated)
                    .await;
                if !caller_subscribed {
                    outgoing.send_notification(caller, &updated).await;
                }
            })
        }),
    ))
}

pub(crate) async fn shell_command(ctx: &Ctx, p: ThreadShellCommandParams) -> HandlerResult {
    let gate = ctx.threads.shell_command(p).map_err(core_error)?;
    // The command's turn and item notifications wait for this response.
    Ok(HandlerReply::then_open(
        P::ThreadShellCommand(EmptyResponse {}),
        Some(gate),
    ))
}

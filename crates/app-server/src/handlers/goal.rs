//! `thread/goal/*` handlers: the goal lives in core with the thread; a change is announced to
//! the thread's subscribers after the response.

use super::{Ctx, HandlerReply, HandlerResult};
use crate::error_map::core_error;
use tally_core::CoreError;
use tally_protocol::server_notification::{ThreadGoalUpdatedNotification, ThreadIdNotification};
use tally_protocol::types::*;
use tally_protocol::{ClientResponsePayload as P, ServerNotification as N};

pub(crate) async fn set(ctx: &Ctx, p: ThreadGoalSetParams) -> HandlerResult {
    let thread_id = p.thread_id.clone();
    let goal = ctx.threads.set_goal(p).await.map_err(core_error)?;
    let updated = N::ThreadGoalUpdated(ThreadGoalUpdatedNotification {
        thread_id: thread_id.clone(),
        turn_id: None,
        goal: goal.clone(),
    });
    let outgoing = ctx.outgoing.clone();
    Ok(HandlerReply::then(
        P::ThreadGoalSet(ThreadGoalSetResponse { goal }),
        Box::new(move || {
            Box::pin(async move {
                outgoing
                    .send_thread_notification(&thread_id, &updated)
                    .await
            })
        }),
    ))
}

pub(crate) async fn get(ctx: &Ctx, p: ThreadIdParams) -> HandlerResult {
    let goal = ctx.threads.get_goal(&p.thread_id).map_err(core_error)?;
    Ok(P::ThreadGoalGet(ThreadGoalGetResponse { goal }).into())
}

pub(crate) async fn clear(ctx: &Ctx, p: ThreadGoalClearParams) -> HandlerResult {
    let thread_id = p.thread_id.clone();
    let cleared = ctx.threads.clear_goal(p).await.map_err(core_error)?;
    let payload = P::ThreadGoalClear(ThreadGoalClearResponse { cleared });
    if !cleared {
        return Ok(payload.into());
    }
    let outgoing = ctx.outgoing.clone();
    let notification = N::ThreadGoalCleared(ThreadIdNotification {
        thread_id: thread_id.clone(),
    });
    Ok(HandlerReply::then(
        payload,
        Box::new(move || {
            Box::pin(async move {
                outgoing
                    .send_thread_notification(&thread_id, &notification)
                    .await
            })
        }),
    ))
}

/// The goal snapshot a resuming client gets after the response: the goal, or that there is none.
pub(crate) fn snapshot(thread_id: &str, goal: Result<Option<ThreadGoal>, CoreError>) -> Option<N> {
    match goal {
        Ok(Some(goal)) => Some(N::ThreadGoalUpdated(ThreadGoalUpdatedNotification {
            thread_id: thread_id.to_string(),
            turn_id: None,
            goal,
        })),
        Ok(None) => Some(N::ThreadGoalCleared(ThreadIdNotification {
            thread_id: thread_id.to_string(),
        })),
        Err(e) => {
            tracing::warn!(thread = %thread_id, error = %e, "no goal snapshot for a resumed thread");
            None
        }
    }
}

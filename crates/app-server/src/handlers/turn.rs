//! `turn/*` handlers.

use super::{Ctx, HandlerReply, HandlerResult};
use crate::error_map::core_error;
use tally_protocol::types::*;
use tally_protocol::ClientResponsePayload as P;

pub(crate) async fn start(ctx: &Ctx, p: TurnStartParams) -> HandlerResult {
    let started = ctx.threads.start_turn(p).await.map_err(core_error)?;
    let payload = P::TurnStart(TurnStartResponse { turn: started.turn });
    Ok(HandlerReply::then_open(payload, started.gate))
}

/// `review/start`: a review run inline, as a new turn of the thread.
pub(crate) async fn review(ctx: &Ctx, p: ReviewStartParams) -> HandlerResult {
    let review_thread_id = p.thread_id.clone();
    let started = ctx.threads.start_review(p).await.map_err(core_error)?;
    let payload = P::ReviewStart(ReviewStartResponse {
        turn: started.turn,
        review_thread_id,
    });
    Ok(HandlerReply::then_open(payload, started.gate))
}

pub(crate) async fn steer(ctx: &Ctx, p: TurnSteerParams) -> HandlerResult {
    let turn_id = ctx.threads.steer_turn(p).await.map_err(core_error)?;
    Ok(P::TurnSteer(TurnSteerResponse { turn_id }).into())
}

pub(crate) async fn interrupt(ctx: &Ctx, p: TurnInterruptParams) -> HandlerResult {
    let proceed = ctx.threads.interrupt_turn(p).await.map_err(core_error)?;
    // The interrupted turn sends `turn/completed` only after this response.
    Ok(HandlerReply::then_open(
        P::TurnInterrupt(EmptyResponse {}),
        proceed,
    ))
}

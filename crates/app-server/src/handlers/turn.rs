//! `turn/*` handlers.

use super::{Ctx, HandlerReply, HandlerResult};
use crate::error_map::core_error;
use tally_protocol::types::*;
use tally_protocol::ClientResponsePayload as P;

pub(crate) async fn start(ctx: &Ctx, p: TurnStartParams) -> HandlerResult {
    let started = ctx.threads.start_turn(p).await.map_err(core_error)?;
    let payload = P::TurnStart(TurnStartResponse { turn: started.turn });
    Ok(match started.gate {
        // The turn waits for this response to go out before it emits `turn/started`.
        Some(gate) => HandlerReply::then(
            payload,
            Box::new(move || {
                Box::pin(async move {
                    let _ = gate.send(());
                })
            }),
        ),
        None => payload.into(),
    })
}

pub(crate) async fn steer(ctx: &Ctx, p: TurnSteerParams) -> HandlerResult {
    let turn_id = ctx.threads.steer_turn(p).await.map_err(core_error)?;
    Ok(P::TurnSteer(TurnSteerResponse { turn_id }).into())
}

pub(crate) async fn interrupt(ctx: &Ctx, p: TurnInterruptParams) -> HandlerResult {
    let proceed = ctx.threads.interrupt_turn(p).await.map_err(core_error)?;
    let payload = P::TurnInterrupt(EmptyResponse {});
    Ok(match proceed {
        // The interrupted turn sends `turn/completed` only after this response.
        Some(proceed) => HandlerReply::then(
            payload,
            Box::new(move || {
                Box::pin(async move {
                    let _ = proceed.send(());
                })
            }),
        ),
        None => payload.into(),
    })
}

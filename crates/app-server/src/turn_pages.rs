//! Paging of a thread's turns for `thread/turns/list`; the cursor is a turn id.

use tally_protocol::types::{
    SortDirection, ThreadItem, ThreadTurnsListParams, ThreadTurnsListResponse, Turn, TurnItemsView,
};

const DEFAULT_LIMIT: usize = 20;

/// One page of `turns` as the params ask, newest first by default.
pub(crate) fn page(mut turns: Vec<Turn>, p: &ThreadTurnsListParams) -> ThreadTurnsListResponse {
    if p.sort_direction.unwrap_or_default() == SortDirection::Desc {
        turns.reverse();
    }
    if let Some(cursor) = &p.cursor {
        match turns.iter().position(|t| &t.id == cursor) {
            Some(i) => {
                turns.drain(..=i);
            }
            None => turns.clear(),
        }
    }
    let limit = p.limit.map(|l| l.max(1) as usize).unwrap_or(DEFAULT_LIMIT);
    let has_more = turns.len() > limit;
    turns.truncate(limit);
    let view = p.items_view.unwrap_or(TurnItemsView::Summary);
    for t in &mut turns {
        shape_items(t, view);
    }
    ThreadTurnsListResponse {
        next_cursor: has_more
            .then(|| turns.last().map(|t| t.id.clone()))
            .flatten(),
        backwards_cursor: turns.first().map(|t| t.id.clone()),
        data: turns,
    }
}

/// `summary` keeps the last agent message, `notLoaded` nothing, `full` everything.
fn shape_items(turn: &mut Turn, view: TurnItemsView) {
    turn.items_view = view;
    match view {
        TurnItemsView::Full => {}
        TurnItemsView::NotLoaded => turn.items.clear(),
        TurnItemsView::Summary => {
            let last = turn
                .items
                .iter()
                .rev()
                .find(|i| matches!(i, ThreadItem::AgentMessage { .. }))
                .cloned();
            turn.items = last.into_iter().collect();
        }
    }
}

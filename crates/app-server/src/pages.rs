//! Paging of a thread's turns (`thread/turns/list`) and items (`thread/items/list`).
//!
//! Cursors are opaque: `after:<key>` continues past a row (`nextCursor`), `at:<key>` starts at it
//! (`backwardsCursor`: read with the opposite direction it shows its anchor again, so a client
//! sees updates to it). A bare key, what earlier releases returned for turns, means `after:`.

use tally_protocol::types::{
    SortDirection, ThreadItem, ThreadItemEntry, ThreadItemsListAnchor, ThreadItemsListCursor,
    ThreadItemsListParams, ThreadItemsListResponse, ThreadTurnsListParams, ThreadTurnsListResponse,
    Turn, TurnItemsView,
};

const DEFAULT_TURN_LIMIT: usize = 20;
const DEFAULT_ITEM_LIMIT: usize = 50;
/// The most rows one page holds, whatever the client asks.
const MAX_LIMIT: usize = 1_000;

/// Why a page cannot be made (a `-32602` for the client).
#[derive(Debug, PartialEq)]
pub(crate) struct PageError(pub String);

/// Where a page starts.
struct Cursor {
    key: String,
    inclusive: bool,
}

impl Cursor {
    fn parse(text: &str) -> Cursor {
        match (text.strip_prefix("after:"), text.strip_prefix("at:")) {
            (Some(key), _) => Cursor {
                key: key.to_owned(),
                inclusive: false,
            },
            (None, Some(key)) => Cursor {
                key: key.to_owned(),
                inclusive: true,
            },
            (None, None) => Cursor {
                key: text.to_owned(),
                inclusive: false,
            },
        }
    }
}

/// A page's rows with its `nextCursor` and `backwardsCursor`.
struct Page<T> {
    rows: Vec<T>,
    next: Option<String>,
    backwards: Option<String>,
}

/// One page of `rows` (given oldest first).
fn page_of<T>(
    mut rows: Vec<T>,
    direction: SortDirection,
    cursor: Option<Cursor>,
    limit: Option<u32>,
    default_limit: usize,
    key_of: impl Fn(&T) -> String,
) -> Result<Page<T>, PageError> {
    if direction == SortDirection::Desc {
        rows.reverse();
    }
    if let Some(cursor) = cursor {
        let Some(i) = rows.iter().position(|r| key_of(r) == cursor.key) else {
            return Err(PageError(format!("unknown cursor `{}`", cursor.key)));
        };
        rows.drain(..i + usize::from(!cursor.inclusive));
    }
    let limit = limit.map_or(default_limit, |l| (l as usize).clamp(1, MAX_LIMIT));
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = more
        .then(|| rows.last().map(|r| format!("after:{}", key_of(r))))
        .flatten();
    let backwards = rows.first().map(|r| format!("at:{}", key_of(r)));
    Ok(Page {
        rows,
        next,
        backwards,
    })
}

/// One page of `turns` as the params ask, newest first by default.
pub(crate) fn turns_page(
    turns: Vec<Turn>,
    p: &ThreadTurnsListParams,
) -> Result<ThreadTurnsListResponse, PageError> {
    let cursor = p.cursor.as_deref().map(Cursor::parse);
    let direction = p.sort_direction.unwrap_or(SortDirection::Desc);
    let mut page = page_of(turns, direction, cursor, p.limit, DEFAULT_TURN_LIMIT, |t| {
        t.id.clone()
    })?;
    let view = p.items_view.unwrap_or(TurnItemsView::Summary);
    for t in &mut page.rows {
        shape_items(t, view);
    }
    Ok(ThreadTurnsListResponse {
        data: page.rows,
        next_cursor: page.next,
        backwards_cursor: page.backwards,
    })
}

/// One page of the items of `turns` (all of them, or the params' turn's), oldest first by
/// default. Items are placed by their position in their turn (ids need not be unique); an item
/// anchor names an item of the params' turn.
pub(crate) fn items_page(
    turns: Vec<Turn>,
    p: &ThreadItemsListParams,
) -> Result<ThreadItemsListResponse, PageError> {
    let turn_id = p.turn_id.as_deref().filter(|t| !t.is_empty());
    if let Some(wanted) = turn_id {
        if !turns.iter().any(|t| t.id == wanted) {
            return Err(PageError(format!("unknown turn `{wanted}`")));
        }
    }
    let entries: Vec<(usize, ThreadItemEntry)> = turns
        .into_iter()
        .filter(|t| turn_id.is_none_or(|wanted| t.id == wanted))
        .flat_map(|t| {
            let turn_id = t.id;
            t.items.into_iter().enumerate().map(move |(place, item)| {
                let entry = ThreadItemEntry {
                    item,
                    turn_id: turn_id.clone(),
                    started_at_ms: None,
                    completed_at_ms: None,
                };
                (place, entry)
            })
        })
        .collect();
    let cursor = match (&p.cursor, turn_id) {
        (None, _) => None,
        (Some(ThreadItemsListCursor::Opaque(text)), _) => Some(Cursor::parse(text)),
        (Some(ThreadItemsListCursor::Anchor(ThreadItemsListAnchor::Item { item_id })), Some(_)) => {
            let Some(anchor) = entries.iter().find(|(_, e)| e.item.id() == item_id) else {
                return Err(PageError(format!("unknown item `{item_id}` in that turn")));
            };
            Some(Cursor {
                key: item_key(anchor),
                inclusive: false,
            })
        }
        (Some(ThreadItemsListCursor::Anchor(_)), None) => {
            return Err(PageError("an item anchor needs `turnId`".into()))
        }
    };
    let direction = p.sort_direction.unwrap_or(SortDirection::Asc);
    let page = page_of(
        entries,
        direction,
        cursor,
        p.limit,
        DEFAULT_ITEM_LIMIT,
        item_key,
    )?;
    Ok(ThreadItemsListResponse {
        data: page.rows.into_iter().map(|(_, e)| e).collect(),
        next_cursor: page.next,
        backwards_cursor: page.backwards,
    })
}

/// An item's place in its thread: its turn and its position there (turn ids hold no `/`).
fn item_key((place, entry): &(usize, ThreadItemEntry)) -> String {
    format!("{}/{place}", entry.turn_id)
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

#[cfg(test)]
#[path = "pages_tests.rs"]
mod tests;

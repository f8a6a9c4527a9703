//! Filtering, sorting and keyset paging for `thread/list`.

use tally_protocol::types::{
    SortDirection, Thread, ThreadListParams, ThreadListResponse, ThreadSortKey, ThreadSourceKind,
};

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;

/// Filters, sorts and pages threads as `thread/list` asks.
pub(crate) fn page(mut threads: Vec<Thread>, p: &ThreadListParams) -> ThreadListResponse {
    let kinds: Vec<ThreadSourceKind> = match &p.source_kinds {
        Some(k) if !k.is_empty() => k.clone(),
        // Omitted or empty: interactive sources only, as the VS Code extension expects.
        _ => vec![ThreadSourceKind::Cli, ThreadSourceKind::Vscode],
    };
    threads.retain(|t| {
        kinds.iter().any(|k| k.matches(t.source))
            && p.cwd.as_ref().is_none_or(|f| f.matches(&t.cwd))
            && p.model_providers
                .as_ref()
                .is_none_or(|m| m.is_empty() || m.contains(&t.model_provider))
            && p.search_term.as_ref().is_none_or(|s| {
                let s = s.to_lowercase();
                t.preview.to_lowercase().contains(&s)
                    || t.name
                        .as_ref()
                        .is_some_and(|n| n.to_lowercase().contains(&s))
            })
    });
    let key = p.sort_key.unwrap_or_default();
    let desc = p.sort_direction.unwrap_or_default() == SortDirection::Desc;
    let sort_value = |t: &Thread| match key {
        ThreadSortKey::CreatedAt => t.created_at,
        ThreadSortKey::UpdatedAt | ThreadSortKey::RecencyAt | ThreadSortKey::SectionPosition => {
            t.updated_at
        }
    };
    threads.sort_by(|a, b| {
        let ord = (sort_value(a), &a.id).cmp(&(sort_value(b), &b.id));
        if desc {
            ord.reverse()
        } else {
            ord
        }
    });
    if let Some((value, id)) = p.cursor.as_deref().and_then(parse_cursor) {
        threads.retain(|t| {
            let ord = (sort_value(t), t.id.as_str()).cmp(&(value, id.as_str()));
            if desc {
                ord.is_lt()
            } else {
                ord.is_gt()
            }
        });
    }
    let limit = p
        .limit
        .map(|l| l as usize)
        .unwrap_or(DEFAULT_PAGE)
        .clamp(1, MAX_PAGE);
    let has_more = threads.len() > limit;
    threads.truncate(limit);
    let next_cursor = has_more
        .then(|| {
            threads
                .last()
                .map(|t| format!("{}:{}", sort_value(t), t.id))
        })
        .flatten();
    let backwards_cursor = threads
        .first()
        .map(|t| format!("{}:{}", sort_value(t), t.id));
    ThreadListResponse {
        data: threads,
        next_cursor,
        backwards_cursor,
    }
}

fn parse_cursor(c: &str) -> Option<(i64, String)> {
    let (v, id) = c.split_once(':')?;
    Some((v.parse().ok()?, id.to_string()))
}

use super::*;
use tally_protocol::types::TurnStatus;

fn turn(id: &str, items: &[&str]) -> Turn {
    Turn {
        id: id.into(),
        root_turn_id: Some(id.into()),
        items: items
            .iter()
            .map(|i| ThreadItem::AgentMessage {
                id: (*i).into(),
                text: format!("text of {i}"),
                phase: None,
            })
            .collect(),
        items_view: TurnItemsView::Full,
        status: TurnStatus::Completed,
        error: None,
        started_at: None,
        completed_at: None,
        duration_ms: None,
    }
}

fn thread() -> Vec<Turn> {
    vec![
        turn("t1", &["a", "b"]),
        turn("t2", &["c"]),
        turn("t3", &["d", "e", "f"]),
    ]
}

fn items(p: &ThreadItemsListParams) -> (Vec<String>, Option<String>, Option<String>) {
    items_of(thread(), p)
}

fn items_of(
    turns: Vec<Turn>,
    p: &ThreadItemsListParams,
) -> (Vec<String>, Option<String>, Option<String>) {
    let page = items_page(turns, p).expect("a page");
    let ids = page
        .data
        .iter()
        .map(|e| format!("{}/{}", e.turn_id, e.item.id()))
        .collect();
    (ids, page.next_cursor, page.backwards_cursor)
}

fn params(limit: u32) -> ThreadItemsListParams {
    ThreadItemsListParams {
        thread_id: "thr".into(),
        limit: Some(limit),
        ..ThreadItemsListParams::default()
    }
}

#[test]
fn item_pages_walk_the_thread_oldest_first_and_never_repeat_or_skip() {
    let mut seen = Vec::new();
    let mut p = params(2);
    loop {
        let (ids, next, _) = items(&p);
        seen.extend(ids);
        match next {
            Some(cursor) => p.cursor = Some(ThreadItemsListCursor::Opaque(cursor)),
            None => break,
        }
    }
    assert_eq!(seen, ["t1/a", "t1/b", "t2/c", "t3/d", "t3/e", "t3/f"]);
}

#[test]
fn the_backwards_cursor_shows_its_anchor_again_in_the_other_direction() {
    let (first, next, _) = items(&params(3));
    assert_eq!(first, ["t1/a", "t1/b", "t2/c"]);
    let mut p = params(3);
    p.cursor = next.map(ThreadItemsListCursor::Opaque);
    let (second, _, backwards) = items(&p);
    assert_eq!(second, ["t3/d", "t3/e", "t3/f"]);
    p.cursor = backwards.map(ThreadItemsListCursor::Opaque);
    p.sort_direction = Some(SortDirection::Desc);
    p.limit = Some(2);
    let (back, _, _) = items(&p);
    assert_eq!(back, ["t3/d", "t2/c"]);
}

#[test]
fn one_turns_items_after_or_before_an_item_anchor() {
    let mut p = params(10);
    p.turn_id = Some("t3".into());
    assert_eq!(items(&p).0, ["t3/d", "t3/e", "t3/f"]);
    p.cursor = Some(ThreadItemsListCursor::Anchor(ThreadItemsListAnchor::Item {
        item_id: "e".into(),
    }));
    assert_eq!(items(&p).0, ["t3/f"]);
    p.sort_direction = Some(SortDirection::Desc);
    assert_eq!(items(&p).0, ["t3/d"]);
}

#[test]
fn bad_anchors_cursors_and_turns_are_refused_with_a_reason() {
    let mut p = params(10);
    p.cursor = Some(ThreadItemsListCursor::Anchor(ThreadItemsListAnchor::Item {
        item_id: "e".into(),
    }));
    let err = items_page(thread(), &p).expect_err("an anchor without a turn");
    assert!(err.0.contains("turnId"), "{err:?}");
    p.turn_id = Some("t9".into());
    assert!(items_page(thread(), &p)
        .expect_err("unknown turn")
        .0
        .contains("t9"));
    let mut p = params(10);
    p.cursor = Some(ThreadItemsListCursor::Opaque("after:nowhere".into()));
    assert!(items_page(thread(), &p).is_err());
}

#[test]
fn the_params_read_in_the_schemas_shapes() {
    let p: ThreadItemsListParams = serde_json::from_value(serde_json::json!({
        "threadId": "thr", "turnId": "t3", "limit": 1,
        "cursor": {"type": "item", "itemId": "d"}, "sortDirection": "asc", "deferOutput": {}
    }))
    .expect("params");
    assert_eq!(items(&p).0, ["t3/e"]);
}

#[test]
fn turn_pages_are_newest_first_and_continue_from_a_bare_id_too() {
    let p = ThreadTurnsListParams {
        thread_id: "thr".into(),
        limit: Some(2),
        ..ThreadTurnsListParams::default()
    };
    let page = turns_page(thread(), &p).expect("page");
    let ids: Vec<&str> = page.data.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["t3", "t2"]);
    // Summary: the last agent message only.
    assert_eq!(page.data[0].items.len(), 1);
    for cursor in [page.next_cursor.clone().expect("more"), "t2".to_owned()] {
        let rest = turns_page(
            thread(),
            &ThreadTurnsListParams {
                cursor: Some(cursor),
                ..p.clone()
            },
        )
        .expect("page");
        assert_eq!(rest.data.len(), 1);
        assert_eq!(rest.data[0].id, "t1");
        assert_eq!(rest.next_cursor, None);
    }
}

#[test]
fn items_that_share_an_id_are_each_paged_once() {
    // A turn whose items share ids must still page to its end, each item once.
    // (A review turn had two items with one id; a cursor after the second meant the first.)
    let turns = vec![
        turn("t1", &["a", "b"]),
        turn("t2", &["x", "u", "r", "x", "m"]),
    ];
    let mut seen = Vec::new();
    let mut p = params(3);
    for _ in 0..10 {
        let (ids, next, _) = items_of(turns.clone(), &p);
        seen.extend(ids);
        match next {
            Some(cursor) => p.cursor = Some(ThreadItemsListCursor::Opaque(cursor)),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["t1/a", "t1/b", "t2/x", "t2/u", "t2/r", "t2/x", "t2/m"]
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, .. proptest::prelude::ProptestConfig::default() })]

    /// Whatever the items (ids repeated or not), the page size and the direction, following
    /// `nextCursor` lists every item once, in order, and each backwards cursor read the other way
    /// starts with its anchor.
    #[test]
    fn following_cursors_lists_every_item_once(
        sizes in proptest::collection::vec(0usize..5, 0..5),
        ids in proptest::collection::vec(0u8..3, 20),
        limit in 1u32..5,
        desc in proptest::bool::ANY,
    ) {
        let mut next_id = ids.iter().cycle();
        let turns: Vec<Turn> = sizes
            .iter()
            .enumerate()
            .map(|(t, n)| {
                let names: Vec<String> = (0..*n)
                    .map(|_| format!("i{}", next_id.next().copied().unwrap_or(0)))
                    .collect();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                turn(&format!("t{t}"), &refs)
            })
            .collect();
        let direction = if desc { SortDirection::Desc } else { SortDirection::Asc };
        let mut expected: Vec<String> = turns
            .iter()
            .flat_map(|t| t.items.iter().map(move |i| format!("{}/{}", t.id, i.id())))
            .collect();
        if desc {
            expected.reverse();
        }
        let mut p = params(limit);
        p.sort_direction = Some(direction);
        let mut seen = Vec::new();
        for _ in 0..=expected.len() {
            let (ids, next, backwards) = items_of(turns.clone(), &p);
            if let (Some(first), Some(cursor)) = (ids.first(), backwards) {
                let mut back = params(1);
                back.sort_direction = Some(if desc { SortDirection::Asc } else { SortDirection::Desc });
                back.cursor = Some(ThreadItemsListCursor::Opaque(cursor));
                proptest::prop_assert_eq!(&items_of(turns.clone(), &back).0[0], first);
            }
            seen.extend(ids);
            match next {
                Some(cursor) => p.cursor = Some(ThreadItemsListCursor::Opaque(cursor)),
                None => break,
            }
        }
        proptest::prop_assert_eq!(seen, expected);
    }
}

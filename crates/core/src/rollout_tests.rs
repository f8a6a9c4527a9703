use super::*;
use tally_protocol::types::UserInput;

fn meta(id: &str) -> ThreadMeta {
    ThreadMeta {
        id: id.into(),
        created_at: 1,
        cwd: "/w".into(),
        model: "m".into(),
        model_provider: "tally-offline".into(),
        source: SessionSource::Vscode,
        originator: Some("test".into()),
        forked_from_id: None,
        cli_version: "0".into(),
        thread_source: None,
        reasoning_effort: None,
        dynamic_tools: Vec::new(),
    }
}

fn user_item(text: &str) -> ThreadItem {
    ThreadItem::UserMessage {
        id: "u1".into(),
        content: vec![UserInput::text(text)],
        client_id: None,
    }
}

#[test]
fn round_trips_turns_items_and_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = rollout_path(dir.path(), "t1");
    let mut w = RolloutWriter::open(&path).expect("open");
    w.append(&RolloutLine::SessionMeta(meta("t1")))
        .expect("write");
    w.append(&RolloutLine::TurnStarted {
        turn_id: "u".into(),
        started_at: 5,
    })
    .expect("write");
    w.append(&RolloutLine::Item {
        turn_id: "u".into(),
        item: user_item("hello"),
    })
    .expect("write");
    w.append(&RolloutLine::ResponseItem(ResponseItem::text_message(
        "user", "hello",
    )))
    .expect("write");
    let loaded = load_rollout(&path).expect("load");
    assert_eq!(loaded.meta.id, "t1");
    assert_eq!(loaded.turns.len(), 1);
    assert_eq!(loaded.turns[0].items.len(), 1);
    assert_eq!(loaded.history.len(), 1);
    assert_eq!(loaded.preview(), "hello");
    // The turn never completed: after a restart it reads as interrupted.
    assert_eq!(loaded.turns[0].status, TurnStatus::Interrupted);
}

#[test]
fn a_torn_last_line_is_skipped_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = rollout_path(dir.path(), "t2");
    let mut w = RolloutWriter::open(&path).expect("open");
    w.append(&RolloutLine::SessionMeta(meta("t2")))
        .expect("write");
    w.append(&RolloutLine::TurnStarted {
        turn_id: "u".into(),
        started_at: 5,
    })
    .expect("write");
    drop(w);
    let mut f = OpenOptions::new().append(true).open(&path).expect("reopen");
    f.write_all(br#"{"type":"item","payload":{"turn_id":"u","ite"#)
        .expect("torn write");
    let loaded = load_rollout(&path).expect("still loads");
    assert_eq!(loaded.skipped_lines, 1);
    assert_eq!(loaded.turns.len(), 1);
    assert_eq!(read_meta(&path).expect("meta").id, "t2");
}

#[test]
fn a_file_without_meta_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rollout-x.jsonl");
    std::fs::write(&path, "garbage\n").expect("write");
    let err = load_rollout(&path).expect_err("no meta");
    assert!(err.to_string().contains("rollout-x.jsonl"), "{err}");
}

fn goal(objective: &str, status: tally_protocol::types::ThreadGoalStatus) -> GoalRecord {
    GoalRecord {
        goal_id: "g1".into(),
        goal: ThreadGoal {
            thread_id: "t3".into(),
            objective: objective.into(),
            status,
            token_budget: Some(100),
            tokens_used: 0,
            time_used_seconds: 0,
            created_at: 1,
            updated_at: 2,
        },
    }
}

#[test]
fn a_compaction_replaces_history_and_the_last_goal_line_wins() {
    use tally_protocol::types::ThreadGoalStatus;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = rollout_path(dir.path(), "t3");
    let mut w = RolloutWriter::open(&path).expect("open");
    let summary = ResponseItem::text_message("user", "summary");
    for line in [
        RolloutLine::SessionMeta(meta("t3")),
        RolloutLine::TurnStarted {
            turn_id: "u1".into(),
            started_at: 5,
        },
        RolloutLine::ResponseItem(ResponseItem::text_message("user", "first")),
        RolloutLine::ResponseItem(ResponseItem::text_message("assistant", "answer")),
        RolloutLine::GoalSet(goal("ship", ThreadGoalStatus::Active)),
        RolloutLine::TurnStarted {
            turn_id: "c1".into(),
            started_at: 6,
        },
        RolloutLine::Compacted {
            replacement: vec![summary.clone()],
        },
        RolloutLine::GoalSet(goal("ship", ThreadGoalStatus::Paused)),
        RolloutLine::TurnStarted {
            turn_id: "u2".into(),
            started_at: 7,
        },
    ] {
        w.append(&line).expect("write");
    }
    drop(w);
    let loaded = load_rollout(&path).expect("loads");
    assert_eq!(loaded.history, vec![summary]);
    assert_eq!(
        loaded.history_marks,
        vec![("u1".into(), 0), ("c1".into(), 0), ("u2".into(), 1)]
    );
    let g = loaded.goal.expect("goal kept");
    assert_eq!(g.goal.status, ThreadGoalStatus::Paused);

    let mut w = RolloutWriter::open(&path).expect("reopen");
    w.append(&RolloutLine::GoalCleared).expect("write");
    drop(w);
    assert_eq!(load_rollout(&path).expect("loads").goal, None);
}

#[test]
fn the_last_agent_task_line_is_the_threads_task_and_holds_no_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = rollout_path(dir.path(), "t1");
    let mut w = RolloutWriter::open(&path).expect("open");
    w.append(&RolloutLine::SessionMeta(meta("t1")))
        .expect("write");
    assert_eq!(read_agent_task(&path).expect("read"), None);
    let task = |runtime: &str, task: &str| AgentTaskRecord {
        agent_runtime_id: runtime.into(),
        task_id: task.into(),
    };
    w.append(&RolloutLine::AgentTask(task("rt-1", "task-1")))
        .expect("write");
    w.append(&RolloutLine::ResponseItem(ResponseItem::text_message(
        "user",
        r#"{"type":"agent_task","payload":{"agent_runtime_id":"fake","task_id":"fake"}}"#,
    )))
    .expect("write");
    w.append(&RolloutLine::AgentTask(task("rt-2", "task-2")))
        .expect("write");
    let text = std::fs::read_to_string(&path).expect("text");
    let line = text
        .lines()
        .find(|l| l.contains("rt-2"))
        .expect("agent_task line");
    assert_eq!(
        line,
        r#"{"type":"agent_task","payload":{"agent_runtime_id":"rt-2","task_id":"task-2"}}"#
    );
    assert_eq!(
        read_agent_task(&path).expect("read"),
        Some(task("rt-2", "task-2"))
    );
    assert_eq!(
        load_rollout(&path).expect("load").agent_task,
        Some(task("rt-2", "task-2"))
    );
}

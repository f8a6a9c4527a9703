//! The rules of `thread/goal/set` and `thread/goal/clear`, as pure functions on a thread's goal:
//! a new objective creates a goal (with a fresh id); without one, the current goal's status or
//! budget changes.

use crate::error::CoreError;
use crate::event_sink::GoalChange;
use crate::rollout::GoalRecord;
use tally_protocol::types::{ThreadGoal, ThreadGoalSetParams, ThreadGoalStatus};

/// The goal after a `thread/goal/set`, and how it changed (`None`: only the budget changed, or
/// nothing did).
pub(crate) fn apply_set(
    current: Option<&GoalRecord>,
    p: &ThreadGoalSetParams,
    now_secs: i64,
) -> Result<(GoalRecord, Option<GoalChange>), CoreError> {
    if let Some(budget) = p.token_budget {
        if budget <= 0 {
            return Err(CoreError::InvalidParams(format!(
                "Invalid params for thread/goal/set: field `tokenBudget`: must be a positive integer, got {budget}"
            )));
        }
    }
    let objective = match &p.objective {
        Some(o) if o.trim().is_empty() => {
            return Err(CoreError::InvalidParams(
                "Invalid params for thread/goal/set: field `objective`: must not be empty".into(),
            ))
        }
        Some(o) => Some(o.as_str()),
        None => None,
    };
    match (current, objective) {
        // The same objective again, or none: the current goal changes in place.
        (Some(cur), None) => Ok(update(cur, p, now_secs)),
        (Some(cur), Some(o)) if o == cur.goal.objective => Ok(update(cur, p, now_secs)),
        (_, Some(o)) => Ok((
            GoalRecord {
                goal_id: uuid::Uuid::new_v4().to_string(),
                goal: ThreadGoal {
                    thread_id: p.thread_id.clone(),
                    objective: o.to_string(),
                    status: p.status.unwrap_or(ThreadGoalStatus::Active),
                    token_budget: p.token_budget,
                    tokens_used: 0,
                    time_used_seconds: 0,
                    created_at: now_secs,
                    updated_at: now_secs,
                },
            },
            Some(GoalChange::Created),
        )),
        (None, None) => Err(CoreError::InvalidParams(
            "Invalid params for thread/goal/set: field `objective`: required, the thread has no goal to update".into(),
        )),
    }
}

fn update(
    cur: &GoalRecord,
    p: &ThreadGoalSetParams,
    now_secs: i64,
) -> (GoalRecord, Option<GoalChange>) {
    let mut next = cur.clone();
    if let Some(status) = p.status {
        next.goal.status = status;
    }
    if let Some(budget) = p.token_budget {
        next.goal.token_budget = Some(budget);
    }
    next.goal.updated_at = now_secs;
    let change = (next.goal.status != cur.goal.status).then_some(GoalChange::StatusChanged);
    (next, change)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(objective: Option<&str>, status: Option<ThreadGoalStatus>) -> ThreadGoalSetParams {
        ThreadGoalSetParams {
            thread_id: "t".into(),
            objective: objective.map(str::to_string),
            status,
            token_budget: None,
            origin: None,
        }
    }

    #[test]
    fn a_new_objective_creates_an_active_goal_with_a_fresh_id() {
        let (first, change) = apply_set(None, &params(Some("ship"), None), 10).expect("set");
        assert_eq!(change, Some(GoalChange::Created));
        assert_eq!(first.goal.status, ThreadGoalStatus::Active);
        assert_eq!((first.goal.created_at, first.goal.updated_at), (10, 10));
        let (second, change) =
            apply_set(Some(&first), &params(Some("other"), None), 11).expect("set");
        assert_eq!(change, Some(GoalChange::Created));
        assert_ne!(second.goal_id, first.goal_id);
    }

    #[test]
    fn a_status_change_keeps_the_goal_and_reports_it() {
        let (goal, _) = apply_set(None, &params(Some("ship"), None), 10).expect("set");
        let (paused, change) = apply_set(
            Some(&goal),
            &params(None, Some(ThreadGoalStatus::Paused)),
            12,
        )
        .expect("set");
        assert_eq!(change, Some(GoalChange::StatusChanged));
        assert_eq!(paused.goal_id, goal.goal_id);
        assert_eq!(paused.goal.created_at, 10);
        assert_eq!(paused.goal.updated_at, 12);
        let (same, change) = apply_set(
            Some(&paused),
            &params(Some("ship"), Some(ThreadGoalStatus::Paused)),
            13,
        )
        .expect("set");
        assert_eq!(change, None);
        assert_eq!(same.goal_id, goal.goal_id);
    }

    #[test]
    fn bad_values_are_invalid_params_naming_the_field() {
        let err = apply_set(None, &params(None, Some(ThreadGoalStatus::Active)), 1)
            .expect_err("nothing to update");
        assert!(matches!(&err, CoreError::InvalidParams(m) if m.contains("`objective`")));
        let err = apply_set(None, &params(Some("  "), None), 1).expect_err("empty");
        assert!(matches!(&err, CoreError::InvalidParams(m) if m.contains("`objective`")));
        let mut p = params(Some("ship"), None);
        p.token_budget = Some(0);
        let err = apply_set(None, &p, 1).expect_err("zero budget");
        assert!(matches!(&err, CoreError::InvalidParams(m) if m.contains("`tokenBudget`")));
    }
}

use super::*;

fn exec(cmd: &str, justification: Option<String>) -> PlannedAction {
    PlannedAction::Exec {
        command: vec!["/bin/bash".into(), "-lc".into(), cmd.into()],
        cwd: "/home/u/project".into(),
        justification,
        sandbox_permissions: SandboxPermissions::RequireEscalated,
        tty: false,
    }
}

#[test]
fn exec_shape_carries_flags_and_no_content() {
    let shape = serde_json::to_value(exec("touch secret-file", Some("why".into())).shape())
        .expect("serializes");
    assert_eq!(
        shape,
        json!({"type": "unified_exec", "sandbox_permissions": "require_escalated",
               "additional_permissions": null, "tty": false})
    );
}

#[test]
fn patch_shape_is_only_its_type() {
    let action = PlannedAction::ApplyPatch {
        cwd: "/p".into(),
        files: vec!["/p/a.txt".into()],
        patch: "*** Begin Patch".into(),
    };
    assert_eq!(
        serde_json::to_value(action.shape()).expect("serializes"),
        json!({"type": "apply_patch"})
    );
}

#[test]
fn prompt_json_shows_the_reviewer_the_whole_command() {
    let (text, truncated) = exec("touch marker", None).prompt_json().expect("builds");
    assert!(text.contains("touch marker") && text.contains("/home/u/project"));
    assert!(text.contains("\"require_escalated\""));
    assert!(!truncated);
}

#[test]
fn long_justification_is_cut_and_the_cut_recorded() {
    let long = "j".repeat(MAX_JUSTIFICATION_CHARS + 10);
    let (text, truncated) = exec("ls", Some(long)).prompt_json().expect("builds");
    assert!(truncated);
    assert!(!text.contains(&"j".repeat(MAX_JUSTIFICATION_CHARS + 1)));
}

#[test]
fn an_action_too_large_to_show_fails_to_build() {
    let err = exec(&"x".repeat(MAX_ACTION_CHARS), None)
        .prompt_json()
        .expect_err("too large");
    assert!(matches!(err, PromptBuildError::ActionTooLarge { .. }));
}

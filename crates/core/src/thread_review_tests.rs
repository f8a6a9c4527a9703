use super::*;

#[test]
fn each_target_names_what_is_reviewed_and_empty_fields_are_refused() {
    let (label, prompt) = review_request(&ReviewTarget::UncommittedChanges).expect("ok");
    assert_eq!(label, "current changes");
    assert!(prompt.contains("untracked"));
    // Every preset asks for located, prioritized findings and a verdict.
    assert!(
        prompt.contains("file and line") && prompt.contains("P0") && prompt.contains("verdict")
    );
    let (label, prompt) = review_request(&ReviewTarget::BaseBranch {
        branch: "main".into(),
    })
    .expect("ok");
    assert_eq!(label, "changes against 'main'");
    assert!(prompt.contains("git merge-base HEAD main"));
    let commit = ReviewTarget::Commit {
        sha: "1234567deadbeef".into(),
        title: Some("Polish colors".into()),
    };
    assert_eq!(
        review_request(&commit).expect("ok").0,
        "commit 1234567: Polish colors"
    );
    let custom = ReviewTarget::Custom {
        instructions: " check the parser ".into(),
    };
    assert_eq!(review_request(&custom).expect("ok").1, "check the parser");
    for (target, field) in [
        (
            ReviewTarget::BaseBranch { branch: " ".into() },
            "target.branch",
        ),
        (
            ReviewTarget::Commit {
                sha: String::new(),
                title: None,
            },
            "target.sha",
        ),
        (
            ReviewTarget::Custom {
                instructions: String::new(),
            },
            "target.instructions",
        ),
    ] {
        match review_request(&target) {
            Err(CoreError::InvalidParams(m)) => assert!(m.contains(field), "{m}"),
            other => panic!("{target:?}: {other:?}"),
        }
    }
}

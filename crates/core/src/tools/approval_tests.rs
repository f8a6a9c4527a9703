use super::*;

const UNTRUSTED: AskForApproval = AskForApproval::Named(ApprovalPolicyName::Untrusted);
const ON_REQUEST: AskForApproval = AskForApproval::Named(ApprovalPolicyName::OnRequest);
const NEVER: AskForApproval = AskForApproval::Named(ApprovalPolicyName::Never);

fn workspace() -> SandboxPolicy {
    SandboxPolicy::WorkspaceWrite {
        writable_roots: vec![],
        network_access: false,
        exclude_tmpdir_env_var: true,
        exclude_slash_tmp: false,
    }
}

fn decide(cmd: &str, policy: &AskForApproval, landlock: bool, escalate: bool) -> ExecDecision {
    let session = SessionApprovals::default();
    exec_decision(
        cmd,
        &ExecContext {
            policy,
            sandbox: &workspace(),
            landlock,
            escalate,
            justification: escalate.then_some("needs the network"),
            session: &session,
        },
    )
}

#[test]
fn untrusted_asks_for_anything_but_known_read_only_commands() {
    assert_eq!(
        decide("touch marker", &UNTRUSTED, true, false),
        ExecDecision::Ask {
            reason: None,
            sandboxed: true
        }
    );
    assert_eq!(
        decide("ls", &UNTRUSTED, true, false),
        ExecDecision::Run { sandboxed: true }
    );
}

#[test]
fn on_request_runs_sandboxed_and_asks_only_for_escalation() {
    assert_eq!(
        decide("touch marker", &ON_REQUEST, true, false),
        ExecDecision::Run { sandboxed: true }
    );
    assert_eq!(
        decide("curl x", &ON_REQUEST, true, true),
        ExecDecision::Ask {
            reason: Some("needs the network".into()),
            sandboxed: false
        }
    );
}

#[test]
fn never_runs_sandboxed_and_refuses_escalation() {
    assert_eq!(
        decide("touch marker", &NEVER, true, false),
        ExecDecision::Run { sandboxed: true }
    );
    assert!(matches!(
        decide("curl x", &NEVER, true, true),
        ExecDecision::Reject(_)
    ));
}

#[test]
fn without_landlock_on_request_falls_back_to_asking_and_never_refuses() {
    assert_eq!(
        decide("touch marker", &ON_REQUEST, false, false),
        ExecDecision::Ask {
            reason: Some("the sandbox is not available on this system".into()),
            sandboxed: false
        }
    );
    assert!(matches!(
        decide("touch marker", &NEVER, false, false),
        ExecDecision::Reject(_)
    ));
    assert!(matches!(
        decide("ls", &UNTRUSTED, false, false),
        ExecDecision::Ask { .. }
    ));
}

#[test]
fn a_command_accepted_for_the_session_is_not_asked_again() {
    let mut session = SessionApprovals::default();
    session.approve_command("touch marker", false);
    let cx = ExecContext {
        policy: &UNTRUSTED,
        sandbox: &workspace(),
        landlock: true,
        escalate: false,
        justification: None,
        session: &session,
    };
    assert_eq!(
        exec_decision("touch marker", &cx),
        ExecDecision::Run { sandboxed: true }
    );
    assert!(matches!(
        exec_decision("touch other", &cx),
        ExecDecision::Ask { .. }
    ));
}

#[test]
fn patches_inside_the_workspace_apply_and_outside_ask_or_are_refused() {
    let cwd = Path::new("/work/project");
    let inside = vec![PathBuf::from("/work/project/src/a.rs")];
    let outside = vec![PathBuf::from("/etc/passwd")];
    let escape = vec![PathBuf::from("/work/project/../../etc/passwd")];
    let s = SessionApprovals::default();
    let w = workspace();
    assert_eq!(
        patch_decision(&inside, &ON_REQUEST, &w, cwd, &s),
        PatchDecision::Apply
    );
    assert!(matches!(
        patch_decision(&outside, &ON_REQUEST, &w, cwd, &s),
        PatchDecision::Ask { reason: Some(_) }
    ));
    assert!(matches!(
        patch_decision(&escape, &ON_REQUEST, &w, cwd, &s),
        PatchDecision::Ask { .. }
    ));
    assert!(matches!(
        patch_decision(&outside, &NEVER, &w, cwd, &s),
        PatchDecision::Reject(_)
    ));
    assert!(matches!(
        patch_decision(&inside, &UNTRUSTED, &w, cwd, &s),
        PatchDecision::Ask { reason: None }
    ));
}

#[test]
fn a_session_approval_of_a_sandboxed_run_does_not_cover_an_unsandboxed_one() {
    let mut session = SessionApprovals::default();
    session.approve_command("npm test", false);
    session.approve_prefix(&["rm".to_string(), "tmp".to_string()]);
    let sandbox = workspace();
    let cx = |escalate| ExecContext {
        policy: &ON_REQUEST,
        sandbox: &sandbox,
        landlock: true,
        escalate,
        justification: None,
        session: &session,
    };
    assert_eq!(
        exec_decision("npm test", &cx(false)),
        ExecDecision::Run { sandboxed: true }
    );
    assert!(matches!(
        exec_decision("npm test", &cx(true)),
        ExecDecision::Ask {
            sandboxed: false,
            ..
        }
    ));
    assert!(matches!(
        exec_decision("rm tmp -rf /home/u", &cx(true)),
        ExecDecision::Ask { .. }
    ));
    // An approval of the unsandboxed run covers both.
    session.approve_command("make deploy", true);
    let cx = ExecContext {
        policy: &UNTRUSTED,
        sandbox: &sandbox,
        landlock: true,
        escalate: true,
        justification: None,
        session: &session,
    };
    assert_eq!(
        exec_decision("make deploy", &cx),
        ExecDecision::Run { sandboxed: false }
    );
}

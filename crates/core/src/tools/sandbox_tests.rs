//! Measures what the sandbox enforces on the running kernel. Where Landlock is missing the
//! enforcement tests have nothing to measure and say so.

use super::*;
use crate::tools::exec::{self, ExecRequest};
use std::time::Duration;
use tokio::sync::mpsc;

fn workspace_write() -> SandboxPolicy {
    SandboxPolicy::WorkspaceWrite {
        writable_roots: vec![],
        network_access: false,
        exclude_tmpdir_env_var: true,
        exclude_slash_tmp: false,
    }
}

/// A directory outside both the workspace and /tmp.
fn outside_dir() -> tempfile::TempDir {
    tempfile::tempdir_in("/var/tmp").expect("a directory under /var/tmp")
}

async fn sandboxed(policy: &SandboxPolicy, cwd: &Path, script: &str) -> exec::ExecResult {
    let rules = SandboxRules::for_policy(policy, cwd).expect("a sandboxed policy");
    let sandbox = PreparedSandbox::build(&rules).expect("ruleset builds");
    let (tx, _rx) = mpsc::channel(64);
    exec::run(
        ExecRequest {
            argv: vec!["/bin/bash".into(), "-c".into(), script.into()],
            cwd: cwd.to_path_buf(),
            timeout: Duration::from_secs(10),
            output_cap: exec::OUTPUT_CAP,
            sandbox: Some(sandbox),
        },
        tx,
    )
    .await
    .expect("runs")
}

#[tokio::test]
async fn workspace_write_allows_the_workspace_and_tmp_and_denies_writes_elsewhere() {
    if !landlock_available() {
        eprintln!("Landlock is not available on this kernel: nothing to measure");
        return;
    }
    let workspace = tempfile::tempdir().expect("workspace");
    let outside = outside_dir();
    let target = outside.path().join("escaped");
    let script = format!(
        "echo in > inside && echo tmp > /tmp/tally-sandbox-probe-$$ && rm /tmp/tally-sandbox-probe-$$ && echo out > {}",
        target.display()
    );
    let r = sandboxed(&workspace_write(), workspace.path(), &script).await;
    assert!(workspace.path().join("inside").exists(), "{r:?}");
    assert_ne!(r.exit_code, 0, "{r:?}");
    assert!(r.output.contains("Permission denied"), "{r:?}");
    assert!(
        !target.exists(),
        "a write outside the workspace went through"
    );
}

#[tokio::test]
async fn read_only_denies_writes_even_in_the_workspace_but_allows_reading_and_dev_null() {
    if !landlock_available() {
        eprintln!("Landlock is not available on this kernel: nothing to measure");
        return;
    }
    let workspace = tempfile::tempdir().expect("workspace");
    std::fs::write(workspace.path().join("a.txt"), "hello\n").expect("write");
    let policy = SandboxPolicy::ReadOnly {
        network_access: false,
    };
    let r = sandboxed(
        &policy,
        workspace.path(),
        "cat a.txt 2>/dev/null; echo x > b.txt",
    )
    .await;
    assert!(r.output.starts_with("hello\n"), "{r:?}");
    assert!(r.output.contains("Permission denied"), "{r:?}");
    assert!(!workspace.path().join("b.txt").exists());
}

#[tokio::test]
async fn network_is_denied_unless_the_policy_allows_it() {
    if !landlock_available() {
        eprintln!("Landlock is not available on this kernel: nothing to measure");
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let workspace = tempfile::tempdir().expect("workspace");
    let script = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected");
    let denied = sandboxed(&workspace_write(), workspace.path(), &script).await;
    assert!(!denied.output.contains("connected"), "{denied:?}");
    assert!(denied.output.contains("Permission denied"), "{denied:?}");
    let open = SandboxPolicy::WorkspaceWrite {
        writable_roots: vec![],
        network_access: true,
        exclude_tmpdir_env_var: true,
        exclude_slash_tmp: false,
    };
    let allowed = sandboxed(&open, workspace.path(), &script).await;
    assert!(allowed.output.contains("connected"), "{allowed:?}");
}

#[test]
fn patch_paths_are_confined_to_the_writable_roots_after_normalizing() {
    let cwd = Path::new("/work/p");
    let policy = workspace_write();
    assert!(may_write(&policy, cwd, Path::new("src/a.rs")));
    assert!(may_write(&policy, cwd, Path::new("/tmp/x")));
    assert!(!may_write(&policy, cwd, Path::new("../q/a.rs")));
    assert!(!may_write(&policy, cwd, Path::new("/etc/passwd")));
    assert!(!may_write(
        &SandboxPolicy::ReadOnly {
            network_access: false
        },
        cwd,
        Path::new("src/a.rs")
    ));
    assert!(may_write(
        &SandboxPolicy::DangerFullAccess,
        cwd,
        Path::new("/etc/x")
    ));
}

#[test]
fn a_symlink_in_the_workspace_does_not_let_a_patch_write_outside() {
    let workspace = tempfile::tempdir().expect("workspace");
    let outside = outside_dir();
    std::os::unix::fs::symlink(outside.path(), workspace.path().join("link")).expect("symlink");
    let policy = workspace_write();
    assert!(may_write(
        &policy,
        workspace.path(),
        Path::new("new/file.txt")
    ));
    assert!(!may_write(
        &policy,
        workspace.path(),
        Path::new("link/file.txt")
    ));
}

#[test]
fn a_patch_path_that_is_itself_a_symlink_is_checked_where_it_points() {
    let workspace = tempfile::tempdir().expect("workspace");
    let outside = outside_dir();
    let policy = workspace_write();
    // A dangling link: the write would create its target outside.
    std::os::unix::fs::symlink(
        outside.path().join("dot-profile"),
        workspace.path().join("notes"),
    )
    .expect("symlink");
    assert!(!may_write(&policy, workspace.path(), Path::new("notes")));
    // A link to an existing file outside.
    std::fs::write(outside.path().join("target"), "x").expect("file");
    std::os::unix::fs::symlink(outside.path().join("target"), workspace.path().join("cfg"))
        .expect("symlink");
    assert!(!may_write(&policy, workspace.path(), Path::new("cfg")));
    // A link that stays inside is fine.
    std::os::unix::fs::symlink("real.txt", workspace.path().join("alias")).expect("symlink");
    assert!(may_write(&policy, workspace.path(), Path::new("alias")));
}

#[test]
fn a_patch_writes_where_its_path_was_checked_not_through_a_link_and_dot_dot() {
    let workspace = tempfile::tempdir().expect("workspace");
    let outside = outside_dir();
    std::os::unix::fs::symlink(outside.path(), workspace.path().join("sub")).expect("symlink");
    let patch = "*** Begin Patch\n*** Add File: sub/../dot-bashrc\n+evil\n*** End Patch";
    let planned = crate::tools::apply_patch::plan(patch, workspace.path()).expect("plan");
    assert_eq!(planned[0].path, workspace.path().join("dot-bashrc"));
    assert!(may_write(
        &workspace_write(),
        workspace.path(),
        &planned[0].path
    ));
}

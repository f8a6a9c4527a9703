use super::*;

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).expect("write");
    }
    dir
}

fn read(dir: &tempfile::TempDir, name: &str) -> String {
    std::fs::read_to_string(dir.path().join(name)).expect("read")
}

#[test]
fn add_update_delete_and_move_apply_to_the_disk() {
    let dir = dir_with(&[
        ("a.txt", "one\ntwo\nthree\n"),
        ("gone.txt", "bye\n"),
        ("old.txt", "x\n"),
    ]);
    let patch = "*** Begin Patch
*** Add File: new.txt
+hello
+world
*** Update File: a.txt
@@
 one
-two
+TWO
 three
*** Delete File: gone.txt
*** Update File: old.txt
*** Move to: moved/new_name.txt
@@
-x
+y
*** End Patch";
    let changes = plan(patch, dir.path()).expect("plans");
    assert_eq!(changes.len(), 4);
    apply(&changes).expect("applies");
    assert_eq!(read(&dir, "new.txt"), "hello\nworld\n");
    assert_eq!(read(&dir, "a.txt"), "one\nTWO\nthree\n");
    assert!(!dir.path().join("gone.txt").exists());
    assert!(!dir.path().join("old.txt").exists());
    assert_eq!(read(&dir, "moved/new_name.txt"), "y\n");
}

#[test]
fn a_hunk_that_does_not_match_plans_nothing_and_names_the_file() {
    let dir = dir_with(&[("a.txt", "one\n")]);
    let patch = "*** Begin Patch\n*** Update File: a.txt\n@@\n-nope\n+yes\n*** End Patch";
    let err = plan(patch, dir.path()).expect_err("does not apply");
    assert!(
        matches!(&err, PatchError::Apply { path, .. } if path == "a.txt"),
        "{err}"
    );
    assert_eq!(read(&dir, "a.txt"), "one\n");
}

#[test]
fn anchors_and_whitespace_tolerance_find_the_right_place() {
    let dir = dir_with(&[("f.rs", "fn a() {\n    x();\n}\nfn b() {\n    x();\n}\n")]);
    let patch =
        "*** Begin Patch\n*** Update File: f.rs\n@@ fn b() {\n-  x();\n+    y();\n*** End Patch";
    let changes = plan(patch, dir.path()).expect("plans");
    assert_eq!(
        changes[0].after.as_deref(),
        Some("fn a() {\n    x();\n}\nfn b() {\n    y();\n}\n")
    );
}

#[test]
fn malformed_patches_are_errors() {
    let dir = dir_with(&[]);
    for bad in [
        "",
        "*** Begin Patch\n*** End Patch",
        "*** Begin Patch\n*** Add File: a\nno plus\n*** End Patch",
        "*** Begin Patch\n*** Frobnicate: a\n*** End Patch",
        "*** Begin Patch\n*** Add File: a\n+x",
    ] {
        assert!(
            matches!(plan(bad, dir.path()), Err(PatchError::Parse(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn the_patch_is_found_inside_an_apply_patch_heredoc() {
    let cmd = "apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: a\n+x\n*** End Patch\nEOF\n";
    assert_eq!(
        patch_in_command(cmd),
        Some("*** Begin Patch\n*** Add File: a\n+x\n*** End Patch")
    );
    assert_eq!(patch_in_command("ls"), None);
}

#[test]
fn update_changes_show_a_unified_diff() {
    let dir = dir_with(&[("a.txt", "one\ntwo\n")]);
    let patch = "*** Begin Patch\n*** Update File: a.txt\n@@\n one\n-two\n+2\n*** End Patch";
    let change = plan(patch, dir.path()).expect("plans")[0].to_protocol();
    assert!(matches!(
        change.kind,
        PatchChangeKind::Update { move_path: None }
    ));
    assert!(change.diff.contains("-two\n+2\n"), "{}", change.diff);
}

use super::*;

#[test]
fn diff_line_counts_count_hunk_lines_not_file_headers() {
    let diff = "\
diff --git a/x b/x
--- a/x
+++ b/x
@@ -0,0 +1,2 @@
+first
+--- not a header: an added line
diff --git a/y b/y
--- a/y
+++ b/y
@@ -1,3 +1,1 @@
 context
--- a removed line that looks like a header
-gone
\\ No newline at end of file
@@ -10 +9 @@
-a
+b
";
    assert_eq!(diff_line_counts(diff), (3, 3));
    assert_eq!(diff_line_counts(""), (0, 0));
    assert_eq!(
        diff_line_counts("diff --git a/z b/z\n--- a/z\n+++ b/z\n"),
        (0, 0)
    );
}

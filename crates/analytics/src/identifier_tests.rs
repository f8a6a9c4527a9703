use super::*;

#[test]
fn slugs_versions_and_ids_pass() {
    for s in [
        "gpt-5.1-codex",
        "openai/gpt-oss-120b",
        "llama3.1:8b",
        "claude@20240620",
        "1.2.3-beta+build.7",
        "thread_title",
        "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "user:17",
    ] {
        assert_eq!(identifier(s).as_deref(), Some(s), "{s}");
    }
}

#[test]
fn text_paths_and_control_characters_do_not() {
    for s in [
        "",
        "my secret plan",
        "/home/alice/project",
        "rm -rf ~",
        "a\u{1b}[2Jb",
        "user\u{202e}resu",
        "naïve",
        "quote\"d",
    ] {
        assert_eq!(identifier(s), None, "{s:?}");
        assert_eq!(identifier_or_other(s), NOT_AN_IDENTIFIER, "{s:?}");
    }
}

#[test]
fn identifiers_are_capped_at_64_characters() {
    let long = "m".repeat(500);
    assert_eq!(identifier(&long), Some("m".repeat(64)));
    assert_eq!(client_name(&long), "m".repeat(64));
}

#[test]
fn client_names_keep_spaces_but_not_control_characters() {
    assert_eq!(client_name("Visual Studio Code"), "Visual Studio Code");
    assert_eq!(client_name("codex-tui"), "codex-tui");
    assert_eq!(client_name("ide\tname"), NOT_AN_IDENTIFIER);
    assert_eq!(client_name("ide\u{202e}"), NOT_AN_IDENTIFIER);
    assert_eq!(client_name(""), NOT_AN_IDENTIFIER);
}

use super::*;

#[test]
fn opening_carries_policy_transcript_and_action_in_order() {
    let transcript = vec![
        TranscriptEntry::User("please clean the build".into()),
        TranscriptEntry::ToolCall {
            name: "exec_command".into(),
            arguments: "{\"cmd\":\"make clean\"}".into(),
        },
    ];
    let messages = opening_messages("thr-1", &transcript, "{\"tool\":\"exec_command\"}");
    assert_eq!(messages[0].text, REVIEW_POLICY);
    assert_eq!(messages[1].role, Role::Developer);
    let user = &messages[2].text;
    let start = user.find(">>> TRANSCRIPT START").expect("start");
    let said = user.find("please clean the build").expect("user turn");
    let request = user.find(">>> APPROVAL REQUEST START").expect("request");
    assert!(start < said && said < request);
    assert!(user.contains("Reviewed session id: thr-1"));
}

#[test]
fn long_transcripts_keep_the_newest_entries() {
    let old = TranscriptEntry::User(format!("OLDEST {}", "x".repeat(MAX_TRANSCRIPT_CHARS)));
    let new = TranscriptEntry::User("NEWEST".into());
    let text = render_transcript(&[old, new]);
    assert!(text.contains("NEWEST") && !text.contains("OLDEST"));
    assert!(text.contains("[earlier history omitted]"));
}

#[test]
fn follow_up_sends_only_the_delta() {
    let m = follow_up_message(&[TranscriptEntry::User("second".into())], "{}");
    assert!(m
        .text
        .starts_with("History added since your last approval assessment"));
    assert!(m.text.contains("second") && !m.text.contains(REVIEW_POLICY));
}

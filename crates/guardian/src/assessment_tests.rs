use super::*;

#[test]
fn full_answer_parses() {
    let a = parse_assessment(
        r#" {"risk_level":"high","user_authorization":"low","outcome":"deny","rationale":"no"} "#,
    )
    .expect("valid");
    assert_eq!(a.risk_level, RiskLevel::High);
    assert_eq!(a.user_authorization, UserAuthorization::Low);
    assert_eq!(a.outcome, Outcome::Deny);
    assert_eq!(a.rationale.as_deref(), Some("no"));
}

#[test]
fn bare_allow_is_low_risk_and_unknown_authorization() {
    let a = parse_assessment(r#"{"outcome":"allow"}"#).expect("valid");
    assert_eq!(
        (a.risk_level, a.user_authorization, a.outcome),
        (RiskLevel::Low, UserAuthorization::Unknown, Outcome::Allow)
    );
}

#[test]
fn answers_that_are_not_exactly_an_assessment_are_rejected() {
    for bad in [
        "",
        "allow",
        "Sure! {\"outcome\":\"allow\"}",
        "```json\n{\"outcome\":\"allow\"}\n```",
        r#"{"outcome":"Allow"}"#,
        r#"{"outcome":"maybe"}"#,
        r#"{"risk_level":"low"}"#,
        r#"{"outcome":"allow","risk_level":"tiny"}"#,
        r#"{"outcome":"allow","rationale":7}"#,
        r#"{"outcome":"allow"} {"outcome":"deny"}"#,
        r#"["allow"]"#,
    ] {
        assert!(parse_assessment(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn schema_requires_only_outcome() {
    assert_eq!(output_schema()["required"], json!(["outcome"]));
}

//! The reviewer's answer: a JSON object with `outcome` (required), `risk_level`,
//! `user_authorization` and `rationale`, parsed strictly.

use serde::Deserialize;
use serde_json::{json, Value};

/// How risky the action is in itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
    Critical,
}

/// How clearly the user asked for the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserAuthorization {
    Unknown,
    Low,
    Medium,
    High,
}

/// The reviewer's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allow,
    Deny,
}

impl RiskLevel {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
            RiskLevel::Critical => "critical",
        }
    }
}

impl UserAuthorization {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            UserAuthorization::Unknown => "unknown",
            UserAuthorization::Low => "low",
            UserAuthorization::Medium => "medium",
            UserAuthorization::High => "high",
        }
    }
}

impl Outcome {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
        }
    }
}

/// A parsed assessment; absent enums take the values Codex records for a bare answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub risk_level: RiskLevel,
    pub user_authorization: UserAuthorization,
    pub outcome: Outcome,
    /// Free text for the user; never sent to analytics.
    pub rationale: Option<String>,
}

/// Why an answer is not a valid assessment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the reviewer's answer is not a valid assessment: {0}")]
pub struct AssessmentError(String);

#[derive(Deserialize)]
struct RawAssessment {
    outcome: Outcome,
    #[serde(default)]
    risk_level: Option<RiskLevel>,
    #[serde(default)]
    user_authorization: Option<UserAuthorization>,
    #[serde(default)]
    rationale: Option<String>,
}

/// Parses the whole answer as one JSON object: no prose around it, exact enum spellings,
/// `outcome` present. Keys outside the schema are ignored, as the schema is not strict.
pub fn parse_assessment(text: &str) -> Result<Assessment, AssessmentError> {
    let value: Value =
        serde_json::from_str(text.trim()).map_err(|e| AssessmentError(e.to_string()))?;
    // serde would also read a struct from an array; the answer must be an object.
    if !value.is_object() {
        return Err(AssessmentError("the answer is not a JSON object".into()));
    }
    let raw: RawAssessment =
        serde_json::from_value(value).map_err(|e| AssessmentError(e.to_string()))?;
    Ok(Assessment {
        risk_level: raw.risk_level.unwrap_or(RiskLevel::Low),
        user_authorization: raw.user_authorization.unwrap_or(UserAuthorization::Unknown),
        outcome: raw.outcome,
        rationale: raw.rationale,
    })
}

/// The JSON schema the reviewer's final message must follow (`text.format`).
pub fn output_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "risk_level": {"type": "string", "enum": ["low", "medium", "high", "critical"]},
            "user_authorization": {"type": "string", "enum": ["unknown", "low", "medium", "high"]},
            "outcome": {"type": "string", "enum": ["allow", "deny"]},
            "rationale": {"type": "string"}
        },
        "required": ["outcome"],
        "additionalProperties": false
    })
}

#[cfg(test)]
#[path = "assessment_tests.rs"]
mod tests;

//! `request_user_input` (experimental): the model asks a person one to three short questions and
//! waits; the questions go out as `item/tool/requestUserInput` and the answers come back as the
//! tool's output.

use serde::Deserialize;
use serde_json::{json, Value};
use tally_protocol::server_request::{
    ToolRequestUserInputOption, ToolRequestUserInputQuestion, ToolRequestUserInputResponse,
};

/// The tool's name.
pub(crate) const REQUEST_USER_INPUT: &str = "request_user_input";

/// The questions a call may ask at most.
const MAX_QUESTIONS: usize = 3;

#[derive(Debug, Deserialize)]
struct Args {
    questions: Vec<QuestionArgs>,
}

#[derive(Debug, Deserialize)]
struct QuestionArgs {
    id: String,
    header: String,
    question: String,
    #[serde(default)]
    options: Option<Vec<OptionArgs>>,
}

#[derive(Debug, Deserialize)]
struct OptionArgs {
    label: String,
    #[serde(default)]
    description: String,
}

/// The tool definition offered to the model, as Codex offers it.
pub(crate) fn definition() -> Value {
    json!({
        "type": "function",
        "name": REQUEST_USER_INPUT,
        "description": "Request user input for one to three short questions and wait for the response.",
        "strict": false,
        "parameters": {
            "type": "object",
            "properties": {
                "questions": {
                    "type": "array",
                    "description": "Questions to show the user. Prefer 1 and do not exceed 3.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string", "description": "Stable identifier for mapping answers (snake_case)."},
                            "header": {"type": "string", "description": "Short header label shown in the UI (12 or fewer chars)."},
                            "question": {"type": "string", "description": "Single-sentence prompt shown to the user."},
                            "options": {
                                "type": "array",
                                "description": "Provide 2-3 mutually exclusive choices, the recommended one first. Do not add an \"Other\" option: the client offers a free-form answer itself. Omit options for a free-form question.",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "label": {"type": "string", "description": "User-facing label (1-5 words)."},
                                        "description": {"type": "string", "description": "One short sentence on the impact or tradeoff if selected."}
                                    },
                                    "required": ["label", "description"],
                                    "additionalProperties": false
                                }
                            }
                        },
                        "required": ["id", "header", "question"],
                        "additionalProperties": false
                    }
                }
            },
            "required": ["questions"],
            "additionalProperties": false
        }
    })
}

/// The questions of a call, or the message the model gets when its arguments are unusable.
pub(crate) fn questions(arguments: &str) -> Result<Vec<ToolRequestUserInputQuestion>, String> {
    let invalid = |why: String| format!("invalid arguments for {REQUEST_USER_INPUT}: {why}");
    let args: Args = serde_json::from_str(arguments).map_err(|e| invalid(e.to_string()))?;
    if args.questions.is_empty() || args.questions.len() > MAX_QUESTIONS {
        return Err(invalid(format!(
            "ask 1 to {MAX_QUESTIONS} questions, not {}",
            args.questions.len()
        )));
    }
    let mut out: Vec<ToolRequestUserInputQuestion> = Vec::with_capacity(args.questions.len());
    for q in args.questions {
        if q.id.trim().is_empty() || q.question.trim().is_empty() {
            return Err(invalid(
                "every question needs an `id` and a `question`".into(),
            ));
        }
        if out.iter().any(|o| o.id == q.id) {
            return Err(invalid(format!("question id `{}` is used twice", q.id)));
        }
        let options: Option<Vec<ToolRequestUserInputOption>> =
            q.options.filter(|o| !o.is_empty()).map(|o| {
                o.into_iter()
                    .map(|o| ToolRequestUserInputOption {
                        label: o.label,
                        description: o.description,
                    })
                    .collect()
            });
        out.push(ToolRequestUserInputQuestion {
            id: q.id,
            header: q.header,
            question: q.question,
            // With options the client adds a free-form "Other" answer, as Codex asks it to.
            is_other: options.is_some(),
            is_secret: false,
            options,
        });
    }
    Ok(out)
}

/// What the model reads: the answers by question id, as JSON.
pub(crate) fn output(response: &ToolRequestUserInputResponse) -> String {
    serde_json::to_string(response).unwrap_or_else(|_| "{\"answers\":{}}".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_are_read_with_options_and_a_free_form_answer() {
        let q = questions(
            r#"{"questions":[{"id":"db","header":"Database","question":"Which one?",
                "options":[{"label":"Postgres","description":"Relational"},{"label":"SQLite","description":"Embedded"}]},
               {"id":"name","header":"Name","question":"What name?"}]}"#,
        )
        .expect("valid");
        assert_eq!(q.len(), 2);
        assert!(q[0].is_other);
        assert_eq!(q[0].options.as_ref().map(Vec::len), Some(2));
        assert!(!q[1].is_other);
        assert_eq!(q[1].options, None);
    }

    #[test]
    fn unusable_arguments_are_explained_to_the_model() {
        for bad in [
            "not json",
            r#"{"questions":[]}"#,
            r#"{"questions":[{"id":"a","header":"A","question":""}]}"#,
            r#"{"questions":[{"id":"a","header":"A","question":"x"},{"id":"a","header":"B","question":"y"}]}"#,
        ] {
            let err = questions(bad).expect_err(bad);
            assert!(
                err.starts_with("invalid arguments for request_user_input"),
                "{err}"
            );
        }
    }
}

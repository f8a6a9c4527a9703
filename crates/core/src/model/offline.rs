//! The built-in offline model: deterministic, no network, driven by simple rules on the
//! last user message, streaming the same events a Responses server would.

use crate::model::{
    ModelClient, ModelError, ModelRequest, ResponseEvent, ResponseItem, ResponseStream,
};
use futures::StreamExt;
use std::time::Duration;
use tally_protocol::types::TokenUsageBreakdown;

/// Marker in a user message that makes the offline model stream slowly (for interrupts and steers).
pub const SLOW_MARKER: &str = "[slow]";
const SLOW_DELAY: Duration = Duration::from_millis(100);
/// In a Guardian review, the action's text markers that script the reviewer (see the README).
pub const GUARDIAN_DENY_MARKER: &str = "[guardian:deny]";
pub const GUARDIAN_MALFORMED_MARKER: &str = "[guardian:malformed]";
pub const GUARDIAN_HANG_MARKER: &str = "[guardian:hang]";
/// How long a hanging review waits before each event: longer than any review deadline.
const GUARDIAN_HANG_DELAY: Duration = Duration::from_secs(3_600);

/// The deterministic offline model.
#[derive(Debug, Default, Clone)]
pub struct OfflineModel;

impl OfflineModel {
    /// The events the model answers `request` with, and the pause between them.
    pub fn plan(&self, request: &ModelRequest) -> (Vec<ResponseEvent>, Option<Duration>) {
        if request
            .metadata
            .subagent
            .as_ref()
            .is_some_and(|s| s.kind == crate::guardian::SUBAGENT_KIND)
        {
            return guardian_plan(request);
        }
        if request.metadata.request_kind == crate::model::RequestKind::Compaction {
            return compaction_plan(request);
        }
        let prompt = last_user_text(&request.input).unwrap_or_default();
        let window = request.metadata.window;
        let reasoning_id = format!("rs_offline_{window}");
        let message_id = format!("msg_offline_{window}");
        let mut events = vec![ResponseEvent::Created];
        events.extend(reasoning_events(&reasoning_id));
        let last = request.input.iter().rev().find(|i| !is_shell_record(i));
        let reply = match (last, &request.output_schema) {
            // A tool just answered: report its result and end the turn.
            (Some(ResponseItem::FunctionCallOutput { output, .. }), _) => {
                let shown: String = output.trim().chars().take(MAX_QUOTED_OUTPUT).collect();
                format!("Tool result: {shown}")
            }
            // A side task asking for a shape (e.g. the TUI's title request) gets that shape, and
            // never a tool call: such threads cannot ask for approval.
            (_, Some(schema)) => {
                super::offline_structured::structured_reply(schema, &prompt).to_string()
            }
            _ => {
                if let Some((name, arguments)) = tool_call_for(&prompt) {
                    let call_id = format!("call_offline_{window}");
                    events.push(ResponseEvent::OutputItemDone(ResponseItem::FunctionCall {
                        id: Some(format!("fc_offline_{window}")),
                        call_id,
                        name,
                        arguments: arguments.to_string(),
                    }));
                    events.push(ResponseEvent::Completed {
                        response_id: format!("resp_offline_{window}"),
                        usage: Some(usage(request, "")),
                    });
                    let delay = prompt.contains(SLOW_MARKER).then_some(SLOW_DELAY);
                    return (events, delay);
                }
                format!("Tally offline model: you said \"{}\".", prompt.trim())
            }
        };
        events.push(ResponseEvent::OutputItemAdded(ResponseItem::Message {
            id: Some(message_id.clone()),
            role: "assistant".into(),
            content: vec![],
        }));
        for word in reply.split_inclusive(' ') {
            events.push(ResponseEvent::OutputTextDelta {
                item_id: message_id.clone(),
                delta: word.to_string(),
            });
        }
        let mut done = ResponseItem::text_message("assistant", reply.clone());
        if let ResponseItem::Message { id, .. } = &mut done {
            *id = Some(message_id);
        }
        events.push(ResponseEvent::OutputItemDone(done));
        events.push(ResponseEvent::Completed {
            response_id: format!("resp_offline_{window}"),
            usage: Some(usage(request, &reply)),
        });
        let delay = prompt.contains(SLOW_MARKER).then_some(SLOW_DELAY);
        (events, delay)
    }
}

/// How much of a tool's output the offline model quotes back.
const MAX_QUOTED_OUTPUT: usize = 400;

/// The tool call a user message asks for, by the rules in the README:
/// `run: <cmd>`, `run-escalated: <cmd>`, `patch: <patch>`, `tool: <name> [<json arguments>]`,
/// `ask: <question>`.
fn tool_call_for(prompt: &str) -> Option<(String, serde_json::Value)> {
    use serde_json::json;
    if let Some((_, cmd)) = prompt.split_once("run-escalated:") {
        return Some((
            "exec_command".into(),
            json!({"cmd": cmd.trim(), "sandbox_permissions": "require_escalated",
                   "justification": "the user asked to run this outside the sandbox"}),
        ));
    }
    if let Some((_, cmd)) = prompt.split_once("run:") {
        return Some(("exec_command".into(), json!({"cmd": cmd.trim()})));
    }
    if let Some((_, patch)) = prompt.split_once("patch:") {
        return Some(("apply_patch".into(), json!({"input": patch.trim()})));
    }
    if let Some((_, rest)) = prompt.split_once("tool:") {
        let rest = rest.trim();
        let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, "{}"));
        let args = serde_json::from_str(args.trim()).unwrap_or_else(|_| json!({}));
        return Some((name.to_string(), args));
    }
    if let Some((_, question)) = prompt.split_once("ask:") {
        return Some((
            "request_user_input".into(),
            json!({"questions": [{"id": "answer", "header": "Question", "question": question.trim(),
                   "options": [{"label": "Yes", "description": "Go ahead."},
                               {"label": "No", "description": "Do not go ahead."}]}]}),
        ));
    }
    None
}

/// Plays Guardian by rules on the planned action (the last one in the review conversation):
/// `[guardian:hang]` never answers, `[guardian:malformed]` answers prose, `rm -rf` or
/// `[guardian:deny]` is denied, anything else is allowed.
fn guardian_plan(request: &ModelRequest) -> (Vec<ResponseEvent>, Option<Duration>) {
    let action = request
        .input
        .iter()
        .rev()
        .filter_map(ResponseItem::message_text)
        .find_map(|t| {
            let (_, rest) = t.rsplit_once("Planned action JSON:")?;
            Some(rest.to_string())
        })
        .unwrap_or_default();
    let (reply, delay) = if action.contains(GUARDIAN_HANG_MARKER) {
        (String::new(), Some(GUARDIAN_HANG_DELAY))
    } else if action.contains(GUARDIAN_MALFORMED_MARKER) {
        ("I would rather not say.".to_string(), None)
    } else if action.contains("rm -rf") || action.contains(GUARDIAN_DENY_MARKER) {
        (
            serde_json::json!({"risk_level": "high", "user_authorization": "low", "outcome": "deny",
                "rationale": "The offline guardian denies destructive or flagged actions."})
            .to_string(),
            None,
        )
    } else {
        (
            serde_json::json!({"risk_level": "low", "user_authorization": "medium", "outcome": "allow",
                "rationale": "The offline guardian allows actions it has no rule against."})
            .to_string(),
            None,
        )
    };
    let window = request.metadata.window;
    let message_id = format!("msg_guardian_{window}");
    let mut done = ResponseItem::text_message("assistant", reply.clone());
    if let ResponseItem::Message { id, .. } = &mut done {
        *id = Some(message_id.clone());
    }
    let events = vec![
        ResponseEvent::Created,
        ResponseEvent::OutputTextDelta {
            item_id: message_id,
            delta: reply.clone(),
        },
        ResponseEvent::OutputItemDone(done),
        ResponseEvent::Completed {
            response_id: format!("resp_guardian_{window}"),
            usage: Some(usage(request, &reply)),
        },
    ];
    (events, delay)
}

/// Answers a compaction request with a summary built from the conversation: every user message
/// before the final one (which asks for the summary), quoted in order.
fn compaction_plan(request: &ModelRequest) -> (Vec<ResponseEvent>, Option<Duration>) {
    let user_messages: Vec<String> = request
        .input
        .iter()
        .filter_map(|item| match item {
            ResponseItem::Message { role, .. } if role == "user" => item.message_text(),
            _ => None,
        })
        .collect();
    let asked = user_messages
        .split_last()
        .map(|(_, earlier)| earlier)
        .unwrap_or_default();
    let replies = request
        .input
        .iter()
        .filter(|item| matches!(item, ResponseItem::Message { role, .. } if role == "assistant"))
        .count();
    let quoted: Vec<String> = asked.iter().map(|t| format!("\"{}\"", t.trim())).collect();
    let summary = format!(
        "Summary of the conversation so far: the user said {}; the assistant replied {replies} time(s).",
        if quoted.is_empty() {
            "nothing yet".to_string()
        } else {
            quoted.join(", then ")
        }
    );
    let window = request.metadata.window;
    let message_id = format!("msg_compact_{window}");
    let mut done = ResponseItem::text_message("assistant", summary.clone());
    if let ResponseItem::Message { id, .. } = &mut done {
        *id = Some(message_id.clone());
    }
    let slow = asked.iter().any(|t| t.contains(SLOW_MARKER));
    let events = vec![
        ResponseEvent::Created,
        ResponseEvent::OutputItemAdded(ResponseItem::Message {
            id: Some(message_id.clone()),
            role: "assistant".into(),
            content: vec![],
        }),
        ResponseEvent::OutputTextDelta {
            item_id: message_id,
            delta: summary.clone(),
        },
        ResponseEvent::OutputItemDone(done),
        ResponseEvent::Completed {
            response_id: format!("resp_compact_{window}"),
            usage: Some(usage(request, &summary)),
        },
    ];
    (events, slow.then_some(SLOW_DELAY))
}

fn reasoning_events(id: &str) -> Vec<ResponseEvent> {
    let summary = "Reading the request.";
    vec![
        ResponseEvent::OutputItemAdded(ResponseItem::Reasoning {
            id: id.to_string(),
            summary: vec![],
            content: None,
            encrypted_content: None,
        }),
        ResponseEvent::ReasoningSummaryPartAdded {
            item_id: id.to_string(),
            summary_index: 0,
        },
        ResponseEvent::ReasoningSummaryTextDelta {
            item_id: id.to_string(),
            summary_index: 0,
            delta: summary.to_string(),
        },
        ResponseEvent::OutputItemDone(ResponseItem::Reasoning {
            id: id.to_string(),
            summary: vec![serde_json::json!({"type": "summary_text", "text": summary})],
            content: None,
            encrypted_content: None,
        }),
    ]
}

fn last_user_text(input: &[ResponseItem]) -> Option<String> {
    input.iter().rev().find_map(|item| match item {
        ResponseItem::Message { role, .. } if role == "user" && !is_shell_record(item) => {
            item.message_text()
        }
        _ => None,
    })
}

/// A person's shell command and its output (`thread/shellCommand`): context, not a prompt.
fn is_shell_record(item: &ResponseItem) -> bool {
    matches!(item, ResponseItem::Message { role, .. } if role == "user")
        && item
            .message_text()
            .is_some_and(|t| t.starts_with("<user_shell_command>"))
}

/// Roughly four characters a token, like a tokenizer would average.
fn usage(request: &ModelRequest, reply: &str) -> TokenUsageBreakdown {
    let input_chars: usize = request
        .prefix
        .iter()
        .chain(request.input.iter())
        .filter_map(ResponseItem::message_text)
        .map(|t| t.len())
        .sum();
    let input_tokens = (input_chars / 4 + 1) as i64;
    let output_tokens = (reply.len() / 4 + 1) as i64;
    TokenUsageBreakdown {
        input_tokens,
        cached_input_tokens: 0,
        cache_write_input_tokens: 0,
        output_tokens,
        reasoning_output_tokens: 4,
        total_tokens: input_tokens + output_tokens,
    }
}

#[async_trait::async_trait]
impl ModelClient for OfflineModel {
    async fn stream(&self, request: ModelRequest) -> Result<ResponseStream, ModelError> {
        let (events, delay) = self.plan(&request);
        let stream = futures::stream::iter(events).then(move |ev| async move {
            if let Some(d) = delay {
                tokio::time::sleep(d).await;
            }
            Ok(ev)
        });
        Ok(stream.boxed())
    }

    fn stream_max_retries(&self) -> u32 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::tool_call_for;
    use serde_json::json;

    #[test]
    fn user_text_rules_pick_the_tool_call() {
        assert_eq!(
            tool_call_for("please run: ls -la"),
            Some(("exec_command".into(), json!({"cmd": "ls -la"})))
        );
        let (name, args) = tool_call_for("run-escalated: curl x").expect("a call");
        assert_eq!(name, "exec_command");
        assert_eq!(args["sandbox_permissions"], "require_escalated");
        assert_eq!(
            tool_call_for("patch: *** Begin Patch\n*** End Patch"),
            Some((
                "apply_patch".into(),
                json!({"input": "*** Begin Patch\n*** End Patch"})
            ))
        );
        assert_eq!(
            tool_call_for("tool: lookup {\"id\": 1}"),
            Some(("lookup".into(), json!({"id": 1})))
        );
        assert_eq!(tool_call_for("hello"), None);
        let (name, args) = tool_call_for("ask: which color?").expect("a call");
        assert_eq!(name, "request_user_input");
        assert_eq!(args["questions"][0]["question"], "which color?");
        assert_eq!(args["questions"][0]["id"], "answer");
    }

    #[test]
    fn a_shell_record_is_context_not_the_prompt() {
        use crate::model::{ModelRequest, ResponseEvent, ResponseItem};
        let request = ModelRequest {
            model: "m".into(),
            prefix: vec![],
            input: vec![
                ResponseItem::text_message("user", "hello there"),
                ResponseItem::text_message(
                    "user",
                    "<user_shell_command>\n<command>\necho run: ls\n</command>\n</user_shell_command>",
                ),
            ],
            tools: vec![],
            reasoning_effort: None,
            output_schema: None,
            metadata: Default::default(),
        };
        let (events, _) = super::OfflineModel.plan(&request);
        assert!(!events.iter().any(|e| matches!(
            e,
            ResponseEvent::OutputItemDone(ResponseItem::FunctionCall { .. })
        )));
        let text = events
            .iter()
            .find_map(|e| match e {
                ResponseEvent::OutputItemDone(item) => item.message_text(),
                _ => None,
            })
            .unwrap_or_default();
        assert!(text.contains("hello there"), "{text}");
    }

    fn guardian_answer(action: &str) -> (String, Option<std::time::Duration>) {
        use crate::model::{ModelRequest, RequestMetadata, ResponseEvent, ResponseItem, Subagent};
        let request = ModelRequest {
            model: "m".into(),
            prefix: vec![],
            input: vec![ResponseItem::text_message(
                "user",
                format!(
                    "[user] run: {action}\nPlanned action JSON:\n{{\"command\": \"{action}\"}}"
                ),
            )],
            tools: vec![],
            reasoning_effort: None,
            output_schema: None,
            metadata: RequestMetadata {
                subagent: Some(Subagent {
                    kind: crate::guardian::SUBAGENT_KIND,
                    parent_thread_id: "thr".into(),
                }),
                ..RequestMetadata::default()
            },
        };
        let (events, delay) = super::OfflineModel.plan(&request);
        let text = events
            .iter()
            .find_map(|e| match e {
                ResponseEvent::OutputItemDone(item) => item.message_text(),
                _ => None,
            })
            .unwrap_or_default();
        (text, delay)
    }

    #[test]
    fn offline_compaction_summarizes_the_user_messages_before_the_request() {
        use crate::model::{
            ModelRequest, RequestKind, RequestMetadata, ResponseEvent, ResponseItem,
        };
        let request = ModelRequest {
            model: "m".into(),
            prefix: vec![],
            input: vec![
                ResponseItem::text_message("user", "fix the parser"),
                ResponseItem::text_message("assistant", "done"),
                ResponseItem::text_message("user", "please summarize"),
            ],
            tools: vec![],
            reasoning_effort: None,
            output_schema: None,
            metadata: RequestMetadata {
                request_kind: RequestKind::Compaction,
                ..RequestMetadata::default()
            },
        };
        let (events, _) = super::OfflineModel.plan(&request);
        let text = events
            .iter()
            .find_map(|e| match e {
                ResponseEvent::OutputItemDone(item) => item.message_text(),
                _ => None,
            })
            .unwrap_or_default();
        assert!(text.contains("\"fix the parser\""), "{text}");
        assert!(!text.contains("please summarize"), "{text}");
        assert!(text.contains("replied 1 time"), "{text}");
        assert!(matches!(
            events.last(),
            Some(ResponseEvent::Completed { usage: Some(_), .. })
        ));
    }

    #[test]
    fn offline_guardian_judges_by_rules_on_the_action() {
        assert!(guardian_answer("touch a")
            .0
            .contains("\"outcome\":\"allow\""));
        assert!(guardian_answer("rm -rf build")
            .0
            .contains("\"outcome\":\"deny\""));
        assert!(guardian_answer("ls [guardian:deny]")
            .0
            .contains("\"outcome\":\"deny\""));
        let (prose, _) = guardian_answer("ls [guardian:malformed]");
        assert!(serde_json::from_str::<serde_json::Value>(&prose).is_err());
        assert!(guardian_answer("ls [guardian:hang]").1.is_some());
    }
}

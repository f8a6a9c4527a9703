use serde::{Deserialize, Serialize};

/// An item of Responses-API input or output: the model-side history of a thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseItem {
    Message {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        role: String,
        content: Vec<ContentItem>,
    },
    Reasoning {
        #[serde(default)]
        id: String,
        #[serde(default)]
        summary: Vec<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<Vec<serde_json::Value>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encrypted_content: Option<String>,
    },
    FunctionCall {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        call_id: String,
        name: String,
        arguments: String,
    },
    FunctionCallOutput {
        call_id: String,
        output: String,
    },
}

/// One content part of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentItem {
    InputText {
        text: String,
    },
    OutputText {
        text: String,
    },
    InputImage {
        image_url: String,
    },
    /// A part this client does not model (refusal, audio, ...); kept out of prompts.
    #[serde(other)]
    Unknown,
}

impl ResponseItem {
    /// A message with one text part (`input_text` for user/developer, `output_text` for assistant).
    pub fn text_message(role: &str, text: impl Into<String>) -> Self {
        let text = text.into();
        let part = if role == "assistant" {
            ContentItem::OutputText { text }
        } else {
            ContentItem::InputText { text }
        };
        ResponseItem::Message {
            id: None,
            role: role.to_string(),
            content: vec![part],
        }
    }

    /// The concatenated text of a message.
    pub fn message_text(&self) -> Option<String> {
        let ResponseItem::Message { content, .. } = self else {
            return None;
        };
        Some(
            content
                .iter()
                .filter_map(|c| match c {
                    ContentItem::InputText { text } | ContentItem::OutputText { text } => {
                        Some(text.as_str())
                    }
                    ContentItem::InputImage { .. } | ContentItem::Unknown => None,
                })
                .collect(),
        )
    }
}

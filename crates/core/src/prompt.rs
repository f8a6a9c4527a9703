//! The instruction and context items Tally sends before the conversation.

use crate::model::{ContentItem, ResponseItem};
use crate::thread::ThreadSettings;
use tally_protocol::types::UserInput;

const BASE_INSTRUCTIONS: &str = "You are a coding agent running in Tally, a Codex-compatible \
app-server. Answer precisely and keep the user informed of what you do.";

/// Developer instructions and the environment context, in the order Codex sends them.
pub(crate) fn prefix_items(settings: &ThreadSettings) -> Vec<ResponseItem> {
    let mut items = vec![ResponseItem::text_message(
        "developer",
        settings
            .base_instructions
            .as_deref()
            .unwrap_or(BASE_INSTRUCTIONS),
    )];
    if let Some(dev) = &settings.developer_instructions {
        items.push(ResponseItem::text_message("developer", dev.clone()));
    }
    items.push(ResponseItem::text_message(
        "user",
        environment_context(settings),
    ));
    items
}

fn environment_context(settings: &ThreadSettings) -> String {
    let (y, m, d) = civil_date(crate::clock::now_secs().div_euclid(86_400));
    format!(
        "<environment_context>\n  <cwd>{}</cwd>\n  <shell>bash</shell>\n  <current_date>{y:04}-{m:02}-{d:02}</current_date>\n  <timezone>UTC</timezone>\n</environment_context>",
        settings.cwd
    )
}

/// The date of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The model-side message for a user's input.
pub(crate) fn user_input_item(input: &[UserInput]) -> ResponseItem {
    let content = input
        .iter()
        .filter_map(|i| match i {
            UserInput::Text { text, .. } => Some(ContentItem::InputText { text: text.clone() }),
            UserInput::Image { url: Some(url), .. } => Some(ContentItem::InputImage {
                image_url: url.clone(),
            }),
            _ => None,
        })
        .collect();
    ResponseItem::Message {
        id: None,
        role: "user".into(),
        content,
    }
}

#[cfg(test)]
mod tests {
    use super::civil_date;

    #[test]
    fn civil_date_matches_known_days() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(20_517), (2026, 3, 5));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
    }
}

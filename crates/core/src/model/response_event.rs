use crate::model::ResponseItem;
use tally_protocol::types::TokenUsageBreakdown;

/// One event of a streamed model response, decoded from SSE.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseEvent {
    Created,
    OutputItemAdded(ResponseItem),
    OutputTextDelta {
        item_id: String,
        delta: String,
    },
    ReasoningSummaryPartAdded {
        item_id: String,
        summary_index: i64,
    },
    ReasoningSummaryTextDelta {
        item_id: String,
        summary_index: i64,
        delta: String,
    },
    ReasoningTextDelta {
        item_id: String,
        content_index: i64,
        delta: String,
    },
    OutputItemDone(ResponseItem),
    Completed {
        response_id: String,
        usage: Option<TokenUsageBreakdown>,
    },
}

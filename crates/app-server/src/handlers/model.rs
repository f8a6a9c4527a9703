//! `model/list`.

use super::{Ctx, HandlerResult};
use tally_core::config::ProviderKind;
use tally_protocol::types::*;
use tally_protocol::ClientResponsePayload as P;

const EFFORTS: [(&str, &str); 3] = [
    ("low", "Fast responses with lighter reasoning"),
    ("medium", "Balances speed and reasoning depth"),
    ("high", "Greater reasoning depth for complex problems"),
];

pub(crate) async fn list(ctx: &Ctx, p: ModelListParams) -> HandlerResult {
    let provider_id = p
        .model_provider
        .as_deref()
        .unwrap_or(&ctx.config.model_provider.id);
    let provider = ctx.config.provider(provider_id);
    let mut names = vec![ctx.config.model.clone()];
    if provider_id != ctx.config.model_provider.id {
        names.clear();
    }
    if let Some(ProviderKind::Offline) = provider.map(|p| &p.kind) {
        names.push(tally_core::config::DEFAULT_OFFLINE_MODEL.to_string());
    }
    names.dedup();
    let default_effort = ctx
        .config
        .model_reasoning_effort
        .clone()
        .unwrap_or_else(|| "medium".to_string());
    let mut data: Vec<Model> = names
        .iter()
        .enumerate()
        .map(|(i, name)| Model {
            id: name.clone(),
            model: name.clone(),
            display_name: name.clone(),
            description: format!("{name} via {provider_id}"),
            hidden: false,
            is_default: i == 0,
            default_reasoning_effort: default_effort.clone(),
            supported_reasoning_efforts: EFFORTS
                .iter()
                .map(|(e, d)| ReasoningEffortOption {
                    reasoning_effort: e.to_string(),
                    description: d.to_string(),
                })
                .collect(),
            input_modalities: vec!["text".into()],
            supports_personality: false,
        })
        .collect();
    if p.include_hidden != Some(true) {
        data.retain(|m| !m.hidden);
    }
    Ok(P::ModelList(ModelListResponse {
        data,
        next_cursor: None,
    })
    .into())
}

//! Chooses where analytics go and starts the pipeline, from config alone.

use std::sync::Arc;
use tally_analytics::delivery::{DeliveryConfig, EventSink, HttpSink, HttpSinkConfig, JsonlSink};
use tally_analytics::pipeline::AnalyticsPipeline;
use tally_core::Config;

/// Starts analytics when enabled and a destination is configured; otherwise nothing runs
/// (no queue, no reducer, no spool), as with Codex when analytics is off.
pub(crate) fn start_analytics(
    config: &Config,
    sink_override: Option<Arc<dyn EventSink>>,
) -> Option<AnalyticsPipeline> {
    if !config.analytics.enabled {
        return None;
    }
    let configured = match sink_override {
        Some(sink) => Ok(Some(sink)),
        None => sink_for(config),
    };
    let sink = match configured {
        Ok(Some(sink)) => sink,
        Ok(None) => {
            tracing::info!(
                "analytics has no destination; set [analytics] collector_url or jsonl_path"
            );
            return None;
        }
        Err(e) => {
            tracing::error!(error = %e, "analytics disabled: its destination cannot be used");
            return None;
        }
    };
    let status = Some(status_path(&config.home));
    match AnalyticsPipeline::start(sink, DeliveryConfig::for_home(&config.home), status) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!(error = %e, "analytics disabled: cannot open the spool");
            None
        }
    }
}

/// Where a running pipeline publishes its counters.
pub fn status_path(home: &std::path::Path) -> std::path::PathBuf {
    home.join("analytics").join("status.json")
}

fn sink_for(config: &Config) -> anyhow::Result<Option<Arc<dyn EventSink>>> {
    let a = &config.analytics;
    if let Some(url) = &a.collector_url {
        let mut http = HttpSinkConfig::new(
            url.clone(),
            "tally",
            format!("tally/{}", tally_core::TALLY_VERSION),
        );
        // Tally's own collector accepts gzip; Codex-style backends get plain JSON.
        http.gzip = true;
        let token = a
            .collector_token_env
            .as_deref()
            .and_then(|var| std::env::var(var).ok())
            .filter(|t| !t.is_empty());
        let auth = bearer(token);
        return Ok(Some(Arc::new(HttpSink::new(http, auth)?)));
    }
    if let Some(path) = &a.jsonl_path {
        return Ok(Some(Arc::new(JsonlSink::open(path)?)));
    }
    Ok(None)
}

fn bearer(token: Option<String>) -> tally_analytics::delivery::AuthHeaderProvider {
    let header = token.and_then(|t| {
        let mut v = reqwest_header_value(&format!("Bearer {t}"))?;
        v.set_sensitive(true);
        Some(v)
    });
    Arc::new(move || match &header {
        Some(v) => vec![(axum::http::header::AUTHORIZATION, v.clone())],
        None => Vec::new(),
    })
}

fn reqwest_header_value(s: &str) -> Option<axum::http::HeaderValue> {
    axum::http::HeaderValue::from_str(s).ok()
}

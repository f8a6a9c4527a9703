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
    auth: Arc<tally_auth::AuthManager>,
) -> Option<AnalyticsPipeline> {
    if !config.analytics.enabled {
        return None;
    }
    let configured = match sink_override {
        Some(sink) => Ok(Some(sink)),
        None => sink_for(config, auth),
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

fn sink_for(
    config: &Config,
    auth: Arc<tally_auth::AuthManager>,
) -> anyhow::Result<Option<Arc<dyn EventSink>>> {
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
        let recovery = auth
            .agent_identity()
            .is_some()
            .then(|| Arc::new(crate::auth_setup::AnalyticsAssertionRecovery(auth.clone())));
        let mut sink = HttpSink::new(http, headers(auth, token))?;
        if let Some(recovery) = recovery {
            sink = sink.with_assertion_recovery(recovery);
        }
        return Ok(Some(Arc::new(sink)));
    }
    if let Some(path) = &a.jsonl_path {
        return Ok(Some(Arc::new(JsonlSink::open(path)?)));
    }
    Ok(None)
}

/// AuthManager decides per POST (AgentAssertion once registered); the collector token, when
/// configured, stands in for the login's bearer.
fn headers(
    auth: Arc<tally_auth::AuthManager>,
    token: Option<String>,
) -> tally_analytics::delivery::AuthHeaderProvider {
    let collector_bearer = token.and_then(|t| {
        let mut v = reqwest_header_value(&format!("Bearer {t}"))?;
        v.set_sensitive(true);
        Some(v)
    });
    Arc::new(move || {
        auth.spawn_refresh_if_expiring();
        auth.default_headers_or(collector_bearer.as_ref())
    })
}

fn reqwest_header_value(s: &str) -> Option<axum::http::HeaderValue> {
    axum::http::HeaderValue::from_str(s).ok()
}

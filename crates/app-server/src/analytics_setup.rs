//! Chooses where analytics go and starts the pipeline, from config alone.

use std::sync::Arc;
use tally_analytics::delivery::{DeliveryConfig, EventSink, HttpSink, HttpSinkConfig, JsonlSink};
use tally_analytics::pipeline::AnalyticsPipeline;
use tally_core::config::AnalyticsDestination;
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
    Ok(match config.analytics.destination() {
        None => None,
        Some(AnalyticsDestination::File(path)) => Some(Arc::new(JsonlSink::open(path)?)),
        Some(AnalyticsDestination::Collector(url)) => Some(collector_sink(config, url, auth)?),
    })
}

/// Events POSTed to the collector at `url`, with the credentials it may be given.
fn collector_sink(
    config: &Config,
    url: &str,
    auth: Arc<tally_auth::AuthManager>,
) -> anyhow::Result<Arc<dyn EventSink>> {
    let mut http = HttpSinkConfig::new(
        url.to_owned(),
        "tally",
        format!("tally/{}", tally_core::TALLY_VERSION),
    );
    http.gzip = gzip_for(url);
    let token = config
        .analytics
        .collector_token_env
        .as_deref()
        .and_then(|var| std::env::var(var).ok())
        .filter(|t| !t.is_empty());
    let trusted = login_trusted_with(url, &config.agent_identity_allowed_hosts);
    if !trusted && token.is_none() {
        tracing::warn!(
            collector = %url,
            "analytics go without credentials: the login's are sent only to ChatGPT hosts and \
             [agent_identity] allowed_hosts; set [analytics] collector_token_env for this collector"
        );
    }
    let recovery = (trusted && auth.agent_identity().is_some())
        .then(|| Arc::new(crate::auth_setup::AnalyticsAssertionRecovery(auth.clone())));
    let login = trusted.then_some(auth);
    let mut sink = HttpSink::new(http, headers(login, token))?;
    if let Some(recovery) = recovery {
        sink = sink.with_assertion_recovery(recovery);
    }
    Ok(Arc::new(sink))
}

/// Tally's own collector accepts gzip; the ChatGPT backend (Codex's destination) gets plain
/// JSON, as Codex sends it.
fn gzip_for(url: &str) -> bool {
    tally_auth::supported_hosts::host_of(url)
        .is_none_or(|host| !tally_auth::supported_hosts::host_allowed(&host, &[]))
}

/// Whether the login's credentials (its bearer, an AgentAssertion) may go to `url`: only to the
/// production and staging ChatGPT hosts and `[agent_identity] allowed_hosts`. An OpenAI API key
/// or a ChatGPT token sent to any other collector would be handed to whoever runs it, and an
/// assertion could be replayed to the real backend within its window.
fn login_trusted_with(url: &str, allowed_hosts: &[String]) -> bool {
    tally_auth::supported_hosts::host_of(url)
        .is_some_and(|host| tally_auth::supported_hosts::host_allowed(&host, allowed_hosts))
}

/// With a trusted `login`, it decides per POST (AgentAssertion once registered) and the collector
/// token, when configured, stands in for its bearer; without one, only the collector token goes.
fn headers(
    login: Option<Arc<tally_auth::AuthManager>>,
    token: Option<String>,
) -> tally_analytics::delivery::AuthHeaderProvider {
    let collector_bearer = token.and_then(|t| {
        let mut v = reqwest_header_value(&format!("Bearer {t}"))?;
        v.set_sensitive(true);
        Some(v)
    });
    Arc::new(move || match &login {
        Some(auth) => {
            auth.spawn_refresh_if_expiring();
            auth.default_headers_or(collector_bearer.as_ref())
        }
        None => collector_bearer
            .iter()
            .map(|v| (axum::http::header::AUTHORIZATION, v.clone()))
            .collect(),
    })
}

fn reqwest_header_value(s: &str) -> Option<axum::http::HeaderValue> {
    axum::http::HeaderValue::from_str(s).ok()
}

#[cfg(test)]
#[path = "analytics_setup_tests.rs"]
mod tests;

//! `tally collector` and `tally report`: the collector's config comes from the `[collector]`
//! table of `$TALLY_HOME/config.toml`; without one, the embedded SQLite store under the home.

use crate::stdout::{print_banner, print_output};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tally_collector::config::StoreKind;
use tally_collector::report::{parse_duration, printable};
use tally_collector::{open_store, CollectorConfig, ReportQuery};

/// The embedded store's file under the home (what `tally serve` writes).
pub fn embedded_db_path(home: &Path) -> PathBuf {
    home.join("collector").join("tally.db")
}

/// Reads `[collector]` from config.toml, or the embedded defaults.
pub fn collector_config(home: &Path) -> anyhow::Result<CollectorConfig> {
    let path = home.join("config.toml");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let mut config = match table.get("collector") {
        Some(value) => value
            .clone()
            .try_into::<CollectorConfig>()
            .map_err(|e| anyhow::anyhow!("{}: [collector]: {e}", path.display()))?,
        None => CollectorConfig::embedded(embedded_db_path(home)),
    };
    // The store stays under the home whatever else the table sets: the embedded file unless it
    // names one, and a relative name is taken from the home (not from where tally was started).
    let named = table
        .get("collector")
        .and_then(|c| c.get("sqlite"))
        .is_some_and(|s| s.get("path").is_some());
    if !named {
        config.sqlite.path = embedded_db_path(home);
    } else if config.sqlite.path.is_relative() {
        config.sqlite.path = home.join(&config.sqlite.path);
    }
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(config)
}

/// Runs a standalone collector until Ctrl-C or SIGTERM, then drains it.
pub async fn run_collector(
    home: &Path,
    listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let mut config = collector_config(home)?;
    if let Some(addr) = listen {
        config.listen = addr;
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    // Also logged: a service manager keeps stderr, and stdout may have no reader at all.
    tracing::info!(%addr, "collector listening");
    print_banner(&format!(
        "Tally collector listening on http://{addr}\n  \
         ingest:     POST http://{addr}/codex/analytics-events/events\n  \
         dashboard:  http://{addr}/\n"
    ));
    tally_collector::serve(config, listener, crate::commands::shutdown_signal()).await
}

/// Refuses, naming the file, when the SQLite database a command reads from is not there: a
/// wrong --home must not leave an empty database behind.
fn existing_database(config: &CollectorConfig) -> anyhow::Result<()> {
    if config.store == StoreKind::Sqlite && !config.sqlite.path.exists() {
        anyhow::bail!(
            "no collector database at {} (`tally serve` or `tally collector` make it when they \
             first run with this home)",
            config.sqlite.path.display()
        );
    }
    Ok(())
}

/// Prints the report for the last `since`.
pub async fn run_report(
    home: &Path,
    since: &str,
    json: bool,
    client: Option<String>,
) -> anyhow::Result<()> {
    let since: Duration =
        parse_duration(since).map_err(|e| anyhow::anyhow!("--since {since:?}: {e}"))?;
    let config = collector_config(home)?;
    existing_database(&config)?;
    let store = open_store(&config)
        .await
        .context("opening the collector store")?;
    let report = store
        .report(ReportQuery::last(since).for_client(client))
        .await
        .context("building the report")?;
    let text = if json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        report.to_string()
    };
    print_output(&text)?;
    Ok(())
}

/// `tally collector identities list|revoke`, where `[collector]` keeps agent identities (its
/// SQLite database, else the shared ClickHouse tables).
pub async fn identities(
    home: &Path,
    command: crate::commands::IdentitiesCommand,
) -> anyhow::Result<()> {
    use crate::commands::IdentitiesCommand;
    use tally_collector::agent_identity::{IdentityRegistry, RuntimeSummary};
    let config = collector_config(home)?;
    existing_database(&config)?;
    let (backend, _) =
        tally_collector::identity_backend::open_backend(&config).map_err(anyhow::Error::msg)?;
    let place = backend.describe();
    match command {
        IdentitiesCommand::List { json } => {
            let stored = backend.everything().await.map_err(anyhow::Error::msg)?;
            let runtimes: Vec<RuntimeSummary> = stored.iter().map(RuntimeSummary::from).collect();
            let text = if json {
                serde_json::to_string_pretty(&runtimes)? + "\n"
            } else if runtimes.is_empty() {
                format!("No agent identities registered ({place}).\n")
            } else {
                let mut text = format!(
                    "{:<36} {:<16} {:<12} {:>5}  STATUS\n",
                    "RUNTIME", "ACCOUNT", "HARNESS", "TASKS"
                );
                for r in runtimes {
                    let status = if r.revoked { "revoked" } else { "active" };
                    // Account and harness come from senders: no terminal escapes.
                    text.push_str(&format!(
                        "{:<36} {:<16} {:<12} {:>5}  {status}\n",
                        printable(&r.agent_runtime_id),
                        printable(&r.account),
                        printable(&r.harness),
                        r.tasks
                    ));
                }
                text
            };
            print_output(&text)?;
            Ok(())
        }
        IdentitiesCommand::Revoke { agent_runtime_id } => {
            let registry =
                IdentityRegistry::with_backend(config.agent_identity.clone(), backend, Vec::new())
                    .map_err(anyhow::Error::msg)?;
            if !registry
                .revoke(&agent_runtime_id)
                .await
                .map_err(anyhow::Error::msg)?
            {
                anyhow::bail!("no agent runtime `{agent_runtime_id}` in {place}");
            }
            print_output(&format!("Revoked {agent_runtime_id}.\n"))?;
            Ok(())
        }
    }
}

#[cfg(test)]
#[path = "collector_cmd_tests.rs"]
mod tests;

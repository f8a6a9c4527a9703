//! Subcommands and their flags.

use crate::stdout::print_banner;
use crate::ws_auth_args::WsAuthArgs;
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use tally_app_server::server::ListenTarget;
use tally_app_server::transport::unix::{default_socket_path, ControlSocket};
use tally_app_server::{AppServer, AppServerOptions};
use tally_core::Config;

/// Tally: a Codex-compatible agent app-server that measures itself.
#[derive(Debug, Parser)]
#[command(name = "tally", version)]
pub struct Cli {
    /// Home directory for config and state (else $TALLY_HOME, $CODEX_HOME, ~/.tally).
    #[arg(long, global = true)]
    pub home: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the app-server (stdio by default), a drop-in for `codex app-server`.
    AppServer {
        /// stdio:// (default), ws://IP:PORT, unix:// (the home's control socket) or unix://PATH.
        #[arg(long, default_value = "stdio://")]
        listen: String,
        #[command(flatten)]
        ws: WsAuthArgs,
        /// Accepted for compatibility with clients that start `codex app-server` with it.
        #[arg(long, hide = true)]
        analytics_default_enabled: bool,
    },
    /// Run the app-server on WebSocket plus an embedded collector and dashboard (unless
    /// `[analytics]` names where events go), and print the URLs.
    Serve {
        /// ws://IP:PORT (non-loopback needs --ws-auth), unix:// or unix://PATH.
        #[arg(long, default_value = "ws://127.0.0.1:4545")]
        listen: String,
        #[command(flatten)]
        ws: WsAuthArgs,
        /// Where the embedded collector (dashboard, ingest) listens.
        #[arg(long, default_value = "127.0.0.1:4546")]
        collector_listen: std::net::SocketAddr,
    },
    /// Run the analytics collector (ingest, store, dashboard) from `[collector]` in config.toml.
    Collector {
        /// Overrides `collector.listen`.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        #[command(subcommand)]
        command: Option<CollectorCommand>,
    },
    /// Print what the collector's store says about usage.
    Report {
        /// How far back: 30m, 24h, 7d, ...
        #[arg(long, default_value = "7d")]
        since: String,
        /// Only this client (product_client_id).
        #[arg(long)]
        client: Option<String>,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Analytics pipeline state.
    Analytics {
        #[command(subcommand)]
        command: AnalyticsCommand,
    },
    /// Save an API key in auth.json (`--api-key KEY`, or `-` to read it from stdin), or show
    /// what is logged in (`login status`).
    Login {
        /// The OpenAI API key to save.
        #[arg(long)]
        api_key: Option<String>,
        #[command(subcommand)]
        command: Option<LoginCommand>,
    },
    /// Remove the stored credentials (auth.json).
    Logout,
    /// Write Tally's JSON Schema of the protocol to a directory.
    Schema {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum CollectorCommand {
    /// Registered agent identities (runtimes): list them or revoke one.
    Identities {
        #[command(subcommand)]
        command: IdentitiesCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum IdentitiesCommand {
    /// Print every registered runtime (no key material).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a runtime at once; a running collector refuses its assertions within a second.
    Revoke {
        /// The `agent_runtime_id`.
        agent_runtime_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum LoginCommand {
    /// Print how Tally is authenticated (never the secret).
    Status,
}

#[derive(Debug, Subcommand)]
pub enum AnalyticsCommand {
    /// Queue depth, spool bytes, sent, retried and dropped, from the last status snapshot and the spool.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

impl Command {
    /// Default log level: quiet for stdio (the client reads our stderr), informative for servers.
    pub fn default_log_level(&self) -> &'static str {
        match self {
            Command::AppServer { .. } | Command::Schema { .. } | Command::Analytics { .. } => {
                "warn"
            }
            Command::Collector {
                command: Some(_), ..
            } => "warn",
            Command::Serve { .. } | Command::Collector { .. } => "info",
            Command::Report { .. } | Command::Login { .. } | Command::Logout => "warn",
        }
    }
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let home = tally_core::home::resolve_home(cli.home.as_deref());
    match cli.command {
        Command::AppServer { listen, ws, .. } => run_app_server(&home, &listen, &ws, None).await,
        Command::Serve {
            listen,
            ws,
            collector_listen,
        } => run_app_server(&home, &listen, &ws, Some(collector_listen)).await,
        Command::Collector {
            listen,
            command: None,
        } => crate::collector_cmd::run_collector(&home, listen).await,
        Command::Collector {
            command: Some(CollectorCommand::Identities { command }),
            ..
        } => crate::collector_cmd::identities(&home, command).await,
        Command::Report {
            since,
            client,
            json,
        } => crate::collector_cmd::run_report(&home, &since, json, client).await,
        Command::Analytics {
            command: AnalyticsCommand::Status { json },
        } => crate::analytics_status::print(&home, json),
        Command::Login {
            api_key,
            command: Some(LoginCommand::Status),
        } => {
            if api_key.is_some() {
                anyhow::bail!("`login status` takes no --api-key");
            }
            crate::auth_cmd::status(&home)
        }
        Command::Login {
            api_key: Some(key),
            command: None,
        } => crate::auth_cmd::login_api_key(&home, &key),
        Command::Login {
            api_key: None,
            command: None,
        } => anyhow::bail!(
            "use `tally login --api-key KEY` (or `-` for stdin) or `tally login status`"
        ),
        Command::Logout => crate::auth_cmd::logout(&home),
        Command::Schema { out } => {
            let written = tally_protocol::schema_export::write_schemas(&out)
                .with_context(|| format!("writing schemas to {}", out.display()))?;
            crate::stdout::print_output(&format!(
                "wrote {} schema files to {}\n",
                written.len(),
                out.display()
            ))?;
            Ok(())
        }
    }
}

async fn run_app_server(
    home: &std::path::Path,
    listen: &str,
    ws: &WsAuthArgs,
    embedded_collector: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let target = ListenTarget::parse(listen).map_err(anyhow::Error::msg)?;
    let auth = ws.resolve().map_err(anyhow::Error::msg)?;
    target
        .check_auth(auth.is_some())
        .map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(home).with_context(|| format!("creating home {}", home.display()))?;
    let config = Config::load(home)?;
    tracing::info!(home = %home.display(), model = %config.model, provider = %config.model_provider.id, "config loaded");
    let mut options = AppServerOptions::default();
    // `[analytics]` naming a destination (a team's collector, a file) wins over the embedded
    // collector, which is for a first run with no set-up; `tally serve` prints where the numbers go.
    let (collector, numbers) = match (embedded_collector, config.analytics.destination()) {
        (None, _) => (None, None),
        (Some(_), Some(to)) => (
            None,
            Some(format!(
                "  analytics:  sent to {to} ([analytics] in config.toml)"
            )),
        ),
        (Some(addr), None) => {
            let c = start_embedded_collector(home, addr, &mut options).await?;
            let numbers = format!(
                "  dashboard:  {}/\n  report:     tally report --since 7d",
                c.base_url()
            );
            (Some(c), Some(numbers))
        }
    };
    let server = AppServer::new(config, options);
    let served = match target {
        // An IDE stops its app-server with SIGTERM (a user with Ctrl-C) as often as by closing
        // stdin: either way the shutdown below flushes analytics.
        ListenTarget::Stdio => {
            tokio::select! {
                () = server.run_stdio() => {}
                () = shutdown_signal() => tracing::info!("signal received; shutting down"),
            }
            Ok(())
        }
        ListenTarget::WebSocket(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            let local = listener.local_addr()?;
            if let Some(numbers) = &numbers {
                print_banner(&format!(
                    "Tally app-server listening on ws://{local}\n  \
                     Codex TUI:  codex --remote ws://{local}\n  \
                     health:     http://{local}/healthz\n{numbers}\n"
                ));
            }
            tracing::info!(%local, auth = auth.is_some(), "listening");
            server
                .run_websocket_with_auth(listener, auth, shutdown_signal())
                .await
        }
        ListenTarget::Unix(path) => {
            let path = path.unwrap_or_else(|| default_socket_path(home));
            let socket = ControlSocket::bind(&path)
                .with_context(|| format!("binding the control socket {}", path.display()))?;
            if let Some(numbers) = &numbers {
                let shown = path.display();
                print_banner(&format!(
                    "Tally app-server listening on unix://{shown}\n  \
                     Codex TUI:  codex --remote unix://{shown}\n{numbers}\n"
                ));
            }
            tracing::info!(path = %path.display(), "listening");
            server.run_unix(socket, auth, shutdown_signal()).await
        }
    };
    // Analytics flush into the embedded store before the store stops.
    server.shutdown().await;
    if let Some(c) = collector {
        c.shutdown().await?;
    }
    Ok(served?)
}

/// Ctrl-C or SIGTERM (what service managers send to stop): either ends the listener (and
/// removes a control socket), or a collector after it drains.
pub(crate) async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

/// Starts the embedded collector (SQLite under the home) and routes analytics into it in process.
async fn start_embedded_collector(
    home: &std::path::Path,
    addr: std::net::SocketAddr,
    options: &mut AppServerOptions,
) -> anyhow::Result<tally_collector::CollectorHandle> {
    let mut config = crate::collector_cmd::collector_config(home)?;
    config.listen = addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the collector on {addr}"))?;
    let handle = tally_collector::start(config, listener).await?;
    options.analytics_sink = Some(std::sync::Arc::new(crate::store_sink::StoreSink::new(
        handle.local_ingest(),
    )));
    Ok(handle)
}

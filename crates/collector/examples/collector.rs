//! Runs a collector from a `config.toml` holding a `[collector]` table (or the defaults), until
//! Ctrl-C: `cargo run -p tally-collector --example collector -- [config.toml] [listen-addr]`.
//! For trying the collector before `tally collector` is wired; it does exactly what that does.

use tally_collector::CollectorConfig;

#[derive(serde::Deserialize, Default)]
struct File {
    #[serde(default)]
    collector: CollectorConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let mut config = match args.next() {
        Some(path) => toml::from_str::<File>(&std::fs::read_to_string(&path)?)?.collector,
        None => CollectorConfig::default(),
    };
    if let Some(listen) = args.next() {
        config.listen = listen.parse()?;
    }
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    println!("collector listening on http://{}", listener.local_addr()?);
    tally_collector::serve(config, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

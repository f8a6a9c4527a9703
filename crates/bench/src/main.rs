//! `tally-bench`: end-to-end timings of a real `tally` binary, measured side by side in one run.
//!
//! `tally-bench session --tally target/release/tally --runs 30` reports, for stdio and WebSocket,
//! the cold start (process spawn to `initialize` answered) and one offline-model turn
//! (`turn/start` sent to `turn/completed` received).

mod session;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "tally-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Cold start and one offline turn, over stdio and WebSocket.
    Session {
        /// The tally binary to measure.
        #[arg(long, default_value = "target/release/tally")]
        tally: std::path::PathBuf,
        /// Runs per transport.
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Session { tally, runs } => session::run(&tally, runs).await,
    }
}

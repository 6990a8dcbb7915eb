//! `ringkv`: the ringkv server (`serve`), a local dev cluster (`dev-cluster`) and the
//! client commands (`put`, `get`, `del`, `status`, `import`, `export`).
//!
//! Layout: `cli` (flags), `config` (flags + TOML + env merged into one `ServeConfig`),
//! `server/` (the node thread, listeners, limits, metrics, shutdown), `peer/`
//! (WebSocket transport between nodes and its authentication), `resp/` (the Redis
//! protocol listener), `wire` (the client WebSocket protocol, shared by server and CLI),
//! `cmd/` (the client-side commands and dev-cluster).
#![deny(clippy::unwrap_used)]

mod cli;
mod cmd;
mod config;
mod error;
mod peer;
mod resp;
mod server;
mod wire;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Serve(args) => server::run(*args),
        Command::DevCluster(args) => cmd::dev_cluster::run(args),
        Command::Put(args) => cmd::kv::put(args),
        Command::Get(args) => cmd::kv::get(args),
        Command::Del(args) => cmd::kv::del(args),
        Command::Status(args) => cmd::status::run(args),
        Command::Import(args) => cmd::transfer::import(args),
        Command::Export(args) => cmd::transfer::export(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("ringkv: {error}");
            std::process::ExitCode::from(1)
        }
    }
}

/// Logs to stderr; `RUST_LOG` filters (default `info`).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

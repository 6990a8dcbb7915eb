//! The `ringkv` binary: parses flags and runs the command (see the library docs).
#![deny(clippy::unwrap_used)]

use std::io::IsTerminal;

use clap::Parser;

use ringkv::cli::{Cli, Command};
use ringkv::{cmd, server};
fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let result = match cli.command {
        Command::Serve(args) => server::run(*args),
        Command::DevCluster(args) => cmd::dev_cluster::run(args),
        Command::Put(args) => cmd::kv::put(args),
        Command::Get(args) => cmd::kv::get(args),
        Command::Del(args) => cmd::kv::del(args),
        Command::Incr(args) => cmd::kv::incr(args),
        Command::Cas(args) => cmd::kv::cas(args),
        Command::Status(args) => cmd::status::run(args),
        Command::Leave(args) => cmd::admin::leave(args),
        Command::Remove(args) => cmd::admin::remove(args),
        Command::Abort(args) => cmd::admin::abort(args),
        Command::Import(args) => cmd::transfer::import(args),
        Command::Export(args) => cmd::transfer::export(args),
        Command::Keys(args) => cmd::keys::run(args),
        Command::Backup(args) => cmd::backup::backup(args),
        Command::Restore(args) => cmd::backup::restore(args),
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
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

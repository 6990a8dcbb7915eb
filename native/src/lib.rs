//! ringkv, the native host of `ringkv-core`: the server (`serve`), a local dev cluster
//! (`dev-cluster`) and the client commands. The binary (`main.rs`) only dispatches; the
//! library exists so integration tests can speak the client protocol (`wire`,
//! `cmd::client`).
//!
//! Layout: `cli` (flags), `config` (flags + TOML + env merged into one `ServeConfig`),
//! `server/` (the node thread, listeners, limits, metrics, shutdown), `peer/`
//! (WebSocket transport between nodes and its authentication), `resp/` (the Redis
//! protocol listener), `wire` (the client WebSocket protocol, shared by server and CLI),
//! `cmd/` (the client-side commands and dev-cluster).
#![deny(clippy::unwrap_used)]

pub mod cli;
pub mod cmd;
pub mod config;
pub mod error;
pub mod peer;
pub mod resp;
pub mod server;
pub mod wire;

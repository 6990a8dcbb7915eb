//! Client-side commands (`put`, `get`, `del`, `status`, `keys`, `import`, `export`,
//! `backup`, `restore`) over the client WebSocket protocol, and `dev-cluster`.

pub mod admin;
pub mod backup;
pub mod backup_format;
pub mod client;
pub mod dev_cluster;
pub mod keys;
pub mod kv;
pub mod status;
pub mod transfer;

/// Runs a client command on a small single-threaded runtime.
pub fn block_on<F: std::future::Future>(future: F) -> crate::error::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(crate::error::io("starting the runtime"))?;
    Ok(runtime.block_on(future))
}

//! Errors of the host (startup, IO, client commands). Bad input from the network is
//! never an `Error` that stops the process: it is answered or the connection closed.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the node: {0}")]
    Node(#[from] ringkv_core::node::NodeError),
    #[error("storage: {0}")]
    Storage(#[from] ringkv_core::storage::StorageError),
    #[error("connection: {0}")]
    Connection(String),
    #[error("the server answered: {0}")]
    Remote(String),
    /// A backup that cannot be taken or restored: unreadable, incomplete or corrupt
    /// files, members missing, a non-empty target cluster.
    #[error("{0}")]
    Backup(String),
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The node took the request but its answer was lost (it stopped first): a write
    /// may or may not have taken effect.
    #[error("the node stopped before answering")]
    NoAnswer,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps an IO error with what was being done.
pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

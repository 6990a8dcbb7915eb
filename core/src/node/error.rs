//! Why a node could not be opened.

use thiserror::Error;

use crate::ring::LayoutError;
use crate::storage::StorageError;

#[derive(Debug, Error)]
pub enum NodeError {
    #[error("invalid node configuration: {reason}")]
    InvalidConfig { reason: String },
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("ring layout: {0}")]
    Layout(#[from] LayoutError),
    /// A persisted `m/` record could not be decoded: refusing to start with a guessed
    /// identity or membership.
    #[error("metadata record {key} is unreadable: {reason}")]
    CorruptMetadata { key: String, reason: String },
}

impl PartialEq for NodeError {
    /// Compares by kind and message (storage errors hold `io::Error`, which has no `Eq`).
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.to_string() == other.to_string()
    }
}

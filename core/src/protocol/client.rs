//! What a client asks a coordinator, and what it gets back.
//!
//! The outcome classes matter to callers (and to the linearizability checker):
//! - `Value`/`Done`: the operation took effect, linearizably.
//! - `Unavailable`, `TooLarge`, `Overloaded`, `Unsupported`: it did **not** take effect;
//!   safe to retry.
//! - `Indeterminate`: a write may or may not have taken effect (it reached some replicas
//!   but not a confirmed quorum); a later read decides, and retrying is a new write.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Chosen by the host per client request and echoed in the reply. The node does not
/// interpret it; hosts keep ids unique among their in-flight requests.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct RequestId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Consistency {
    /// ABD quorum register: every operation appears to take effect at one instant
    /// between its call and its reply.
    #[default]
    Linearizable,
    /// Dynamo-style sloppy quorums with siblings. Not built yet: answered with
    /// [`ClientError::Unsupported`].
    Eventual,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientRequest {
    Get {
        key: Vec<u8>,
        consistency: Consistency,
    },
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        consistency: Consistency,
    },
    Delete {
        key: Vec<u8>,
        consistency: Consistency,
    },
}

impl ClientRequest {
    pub fn key(&self) -> &[u8] {
        match self {
            ClientRequest::Get { key, .. }
            | ClientRequest::Put { key, .. }
            | ClientRequest::Delete { key, .. } => key,
        }
    }

    pub fn consistency(&self) -> Consistency {
        match self {
            ClientRequest::Get { consistency, .. }
            | ClientRequest::Put { consistency, .. }
            | ClientRequest::Delete { consistency, .. } => *consistency,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientReply {
    /// A get's result; `None` when the key is absent or deleted.
    Value(Option<Vec<u8>>),
    /// A put or delete took effect.
    Done,
    Error(ClientError),
}

/// Which part of a request was over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Oversized {
    Key,
    Value,
}

impl std::fmt::Display for Oversized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Oversized::Key => "key",
            Oversized::Value => "value",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum ClientError {
    /// Not enough replicas could be reached; the operation did not take effect.
    #[error("unavailable: {reason} (the operation did not take effect; safe to retry)")]
    Unavailable { reason: String },
    /// A write reached some replicas but no quorum confirmed it in time: it may or may
    /// not have taken effect, now or later.
    #[error("indeterminate: {reason} (the write may or may not have taken effect)")]
    Indeterminate { reason: String },
    #[error("{what} is {size_bytes} bytes; the limit is {limit_bytes} bytes")]
    TooLarge {
        what: Oversized,
        size_bytes: u64,
        limit_bytes: u64,
    },
    /// The coordinator already has its maximum of requests in flight.
    #[error("overloaded: too many requests in flight on this node; retry later")]
    Overloaded,
    #[error("unsupported: {reason}")]
    Unsupported { reason: String },
}

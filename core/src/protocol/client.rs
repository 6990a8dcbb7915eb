//! What a client asks a coordinator, and what it gets back.
//!
//! The outcome classes matter to callers (and to the linearizability checker):
//! - `Value`/`Done`: the operation took effect, linearizably (eventual mode: `Done`
//!   means durable at W nodes of the key's sloppy quorum; `Siblings` is a read's merge of
//!   R nodes' states, which may miss writes not yet propagated).
//! - `Unavailable`, `TooLarge`, `Overloaded`, `Unsupported`, `InvalidContext`: it did
//!   **not** take effect; safe to retry.
//! - `Indeterminate`: a write may or may not have taken effect (it reached some replicas
//!   but not a confirmed quorum); a later read decides, and retrying is a new write.
//!
//! Eventual mode (opt-in per request, `node/eventual/`): a `Get` with
//! [`Consistency::Eventual`] answers [`ClientReply::Siblings`] (every concurrent value and
//! an opaque causal context); writes go through [`ClientRequest::PutEventual`] and
//! [`ClientRequest::DeleteEventual`], which carry that context back, or through
//! `Put`/`Delete` with `Consistency::Eventual` (a blind write: no context). Eventual keys
//! live in their own keyspace: a key written in one mode is invisible to the other, so
//! use each key in one mode only.
//!
//! Compatibility: variants are only appended (postcard encodes the variant index), so
//! every request and reply of the linearizable API keeps its encoding.

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
    /// Dynamo-style sloppy quorums with siblings (dotted version vectors): reads return
    /// every concurrent value and a causal context; a write carrying a read's context
    /// supersedes exactly the values that read returned. Never linearizable; a separate
    /// keyspace from linearizable keys.
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
    /// An eventual-mode put. `context`: the opaque context of an earlier
    /// [`ClientReply::Siblings`] for this key; the put supersedes exactly the values that
    /// read returned (and keeps concurrent ones as siblings). `None` is a blind write,
    /// concurrent with every stored value (the same as `Put` with
    /// `Consistency::Eventual`). A context not produced by this cluster is refused with
    /// [`ClientError::InvalidContext`].
    PutEventual {
        key: Vec<u8>,
        value: Vec<u8>,
        context: Option<Vec<u8>>,
    },
    /// An eventual-mode delete: writes a tombstone sibling (shown as `None` by reads)
    /// that supersedes what the context's read returned. Same `context` rules as
    /// [`ClientRequest::PutEventual`].
    DeleteEventual {
        key: Vec<u8>,
        context: Option<Vec<u8>>,
    },
    /// A membership change, coordinated by the receiving node. `Done` once the change
    /// is chosen cluster-wide (data then streams to new owners; `NodeStatus::membership`
    /// shows progress); `Unavailable` if it was not chosen (no majority of members
    /// reachable, another change in progress or chosen instead: retry);
    /// `Indeterminate` if it may still be chosen.
    Admin(AdminRequest),
    /// One page of a scan of the linearizable keyspace in ring order
    /// (`node/coordinator/scan.rs`): keys at ring positions from `cursor` on, about
    /// `count` of them (a page may hold fewer, even none, and a few more to finish a
    /// position). Answered by [`ClientReply::Keys`], whose `cursor` continues the scan;
    /// `0` starts it and a returned `0` ends it. A key present for the whole scan is
    /// returned at least once; a key deleted before the scan began never. Each page
    /// reads a majority of its arc's replicas.
    Scan { cursor: u64, count: u32 },
    /// A conditional write or read-modify-write of `key` (compare-and-set, set if
    /// absent or present, get-and-set, get-and-delete, increment): one single-decree
    /// consensus round on the key's register (`node/coordinator/update.rs`),
    /// linearizable together with every `Get`, `Put` and `Delete` of the key. Answered
    /// by [`ClientReply::Updated`]; [`ClientError::Contention`] when concurrent
    /// conditional writes kept it from a round (it did not take effect: retry).
    Update { key: Vec<u8>, update: Update },
}

/// What a [`ClientRequest::Update`] does with the value it finds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Update {
    /// Store `value` (`None`: delete the key) iff `condition` holds for the current
    /// value. Answered `applied: false` (and nothing changed) when it does not.
    Set {
        condition: Condition,
        value: Option<Vec<u8>>,
    },
    /// Read the value as a signed 64-bit decimal integer (absent: 0), add `delta` and
    /// store the sum in decimal. [`ClientError::NotAnInteger`] when the value is not
    /// such an integer or the sum overflows (nothing changed).
    Add { delta: i64 },
}

/// The condition of an [`Update::Set`] on the key's current value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    Always,
    /// The key is absent (never written, or deleted).
    Absent,
    /// The key has a value.
    Present,
    /// The key's value is exactly these bytes.
    Equals(Vec<u8>),
}

impl Condition {
    /// Whether the condition holds for `current` (`None`: absent).
    pub fn holds(&self, current: Option<&[u8]>) -> bool {
        match self {
            Condition::Always => true,
            Condition::Absent => current.is_none(),
            Condition::Present => current.is_some(),
            Condition::Equals(expected) => current == Some(expected.as_slice()),
        }
    }
}

/// Membership changes. One at a time cluster-wide: a change is refused while the
/// previous one is still moving data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminRequest {
    /// Add a node (it must be running with no member list, waiting to be added), or
    /// change a member's zone, capacity or address.
    Join(crate::ring::NodeSpec),
    /// Decommission a live member: its ranges stream to their new owners before the
    /// change commits; the node then stops serving.
    Leave(crate::ring::NodeId),
    /// Remove a member that is gone for good (same change as `Leave`; its ranges are
    /// rebuilt from the remaining replicas). It must never be restarted with its data.
    Remove(crate::ring::NodeId),
    /// Move a member bound to an identity (`NodeSpec::identity`) to a new address: a
    /// relayed replica whose host is gone re-attaches elsewhere and asks for this. Only
    /// with the member's identity secret; nothing else changes and no data moves.
    Rehome {
        id: crate::ring::NodeId,
        address: String,
        secret: Vec<u8>,
    },
    /// Remove a member that is down, rebuilding each of its ranges from the other
    /// replicas even where they are fewer than a majority of the range's replicas
    /// (N = 2): every one of them must be up. Refused (naming the range) when that
    /// would lose a range's last copy.
    ForceRemove(crate::ring::NodeId),
    /// Abort the membership change in progress (a node it adds died before it synced):
    /// this member fences it, the others follow, and once the fences prove it can
    /// never commit the layout before it is committed again (`ring/history.rs`).
    /// `Done` once aborted; an error if it committed first.
    Abort,
}

impl ClientRequest {
    pub fn key(&self) -> &[u8] {
        match self {
            ClientRequest::Get { key, .. }
            | ClientRequest::Put { key, .. }
            | ClientRequest::Delete { key, .. }
            | ClientRequest::PutEventual { key, .. }
            | ClientRequest::DeleteEventual { key, .. }
            | ClientRequest::Update { key, .. } => key,
            ClientRequest::Admin(_) | ClientRequest::Scan { .. } => &[],
        }
    }

    pub fn consistency(&self) -> Consistency {
        match self {
            ClientRequest::Get { consistency, .. }
            | ClientRequest::Put { consistency, .. }
            | ClientRequest::Delete { consistency, .. } => *consistency,
            ClientRequest::PutEventual { .. } | ClientRequest::DeleteEventual { .. } => {
                Consistency::Eventual
            }
            ClientRequest::Admin(_) | ClientRequest::Scan { .. } | ClientRequest::Update { .. } => {
                Consistency::Linearizable
            }
        }
    }

    /// The value a put would write (`None` for gets and deletes); for an update, the
    /// largest value it names (checked against the value limit).
    pub fn value(&self) -> Option<&[u8]> {
        match self {
            ClientRequest::Put { value, .. } | ClientRequest::PutEventual { value, .. } => {
                Some(value)
            }
            ClientRequest::Update {
                update: Update::Set { condition, value },
                ..
            } => {
                let expected = match condition {
                    Condition::Equals(expected) => Some(expected.as_slice()),
                    _ => None,
                };
                [value.as_deref(), expected]
                    .into_iter()
                    .flatten()
                    .max_by_key(|bytes| bytes.len())
            }
            _ => None,
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
    /// An eventual get's result: every live sibling value (`None` is a delete's
    /// tombstone; empty when the key was never written) and the causal context to pass
    /// to the next `PutEventual`/`DeleteEventual` of this key. The context is opaque
    /// (a format version byte and the postcard-encoded version vector); clients store
    /// and return it unchanged.
    Siblings {
        values: Vec<Option<Vec<u8>>>,
        context: Vec<u8>,
    },
    /// A scan page ([`ClientRequest::Scan`]): its keys in ring order, and the cursor
    /// of the next page (`0`: the scan is complete).
    Keys {
        keys: Vec<Vec<u8>>,
        cursor: u64,
    },
    /// An update's result ([`ClientRequest::Update`]): whether it stored its value
    /// (`false`: the condition did not hold, nothing changed), the value it found
    /// (`previous`) and the key's value after it (`current`: the sum for `Add`, the new
    /// value if applied, else `previous`). `None` is absent.
    Updated {
        applied: bool,
        previous: Option<Vec<u8>>,
        current: Option<Vec<u8>>,
    },
}

/// Which part of a request was over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Oversized {
    Key,
    Value,
    /// An eventual write's causal context.
    Context,
    /// An eventual key's sibling state (all concurrent values and their versions) after
    /// the write: resolve the siblings (write back with the read's context) first.
    Siblings,
}

impl std::fmt::Display for Oversized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Oversized::Key => "key",
            Oversized::Value => "value",
            Oversized::Context => "causal context",
            Oversized::Siblings => "sibling state",
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
    /// An eventual write's causal context could not be decoded (it was not produced by
    /// this cluster's reads, or was damaged) or is unusable; the write did not take
    /// effect.
    #[error("invalid causal context: {reason} (the write did not take effect)")]
    InvalidContext { reason: String },
    /// Concurrent conditional writes on the key kept this one from completing a round
    /// in its bounded number of tries; it did not take effect. Retry (after a pause).
    #[error("contention: {reason} (the operation did not take effect; retry)")]
    Contention { reason: String },
    /// An `Add` found a value that is not a signed 64-bit decimal integer, or the sum
    /// overflows; nothing changed.
    #[error("value is not an integer or out of range")]
    NotAnInteger,
}

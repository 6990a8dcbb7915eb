//! Node-to-node messages.
//!
//! Every data message carries the [`OpId`] of the coordinator operation it belongs to;
//! replies echo it, and a coordinator drops replies whose operation is no longer in
//! flight (late, duplicated or from a previous incarnation). Replicas keep no per-request
//! state, so any message may be lost, duplicated or reordered and simply resent.

use serde::{Deserialize, Serialize};

use crate::antientropy::{ExchangeRequest, ExchangeResponse};
use crate::ring::NodeId;
use crate::versioning::Tag;

use super::antientropy::{KeyPage, KeyPageReply};

/// Identifies one coordinator operation cluster-wide.
///
/// Invariant: never reused, also across crashes. `seq` restarts at 0 on every open, so
/// `incarnation` (persisted and bumped durably on every open) keeps a reply that was
/// delayed across a restart from matching a new operation with the same `seq`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct OpId {
    pub coordinator: NodeId,
    pub incarnation: u64,
    pub seq: u64,
}

impl std::fmt::Display for OpId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.coordinator, self.incarnation, self.seq)
    }
}

/// One member's liveness evidence as a gossiping node knows it. Ordered by
/// `(incarnation, heartbeat)`: a restarted node starts a new incarnation with heartbeat
/// 0, which still counts as newer than anything from its previous life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GossipEntry {
    pub id: NodeId,
    pub incarnation: u64,
    pub heartbeat: u64,
}

impl GossipEntry {
    /// The comparison key: larger means more recent.
    pub fn version(&self) -> (u64, u64) {
        (self.incarnation, self.heartbeat)
    }
}

/// Everything one node sends another. Variant order is part of the wire format (postcard
/// encodes the variant index): append new variants at the end, never reorder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMessage {
    /// ABD write, phase 1: "what is your tag for `key`?" Answered by [`PeerMessage::ReadTagAck`].
    ReadTag { req: OpId, key: Vec<u8> },
    /// The replica's current tag for the key ([`Tag::ZERO`] if it never stored one).
    ReadTagAck { req: OpId, tag: Tag },
    /// ABD read, phase 1: "what is your tag and value for `key`?"
    Read { req: OpId, key: Vec<u8> },
    /// The replica's current tag and value (`None`: absent or deleted).
    ReadAck {
        req: OpId,
        tag: Tag,
        value: Option<Vec<u8>>,
    },
    /// ABD phase 2 (a put, a delete with `value: None`, or a read's write-back): store
    /// `value` under `tag` if `tag` is greater than the stored tag, durably.
    Write {
        req: OpId,
        key: Vec<u8>,
        tag: Tag,
        value: Option<Vec<u8>>,
    },
    /// Sent only once the replica durably holds a tag at least as large as the write's.
    WriteAck { req: OpId },
    /// The sender's member table. `layout_version` is the ring layout it routes by (the
    /// layout is static for now; carried so layout changes can spread by gossip later).
    Gossip {
        layout_version: u64,
        members: Vec<GossipEntry>,
    },
    // ---- Anti-entropy (node/ae/; appended: variant order is wire format) ----
    /// Merkle exchange, initiator → responder (a co-replica of the request's range).
    AntiEntropy(ExchangeRequest),
    /// Merkle exchange, responder → initiator.
    AntiEntropyReply(ExchangeResponse),
    /// Repair: the initiator's `(key, version)` entries of one page of a differing span.
    AntiEntropyKeys(KeyPage),
    /// Repair: how far the page was compared and which of its keys the responder wants.
    AntiEntropyKeysReply(KeyPageReply),
    /// Repair: a register the sender durably holds and the receiver lacks or holds
    /// older. Applied with `Write` semantics (iff `tag` is greater), never acknowledged:
    /// a lost push is found again by the next exchange.
    AntiEntropyPush {
        key: Vec<u8>,
        tag: Tag,
        value: Option<Vec<u8>>,
    },
}

impl PeerMessage {
    /// Short name for traces and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            PeerMessage::ReadTag { .. } => "ReadTag",
            PeerMessage::ReadTagAck { .. } => "ReadTagAck",
            PeerMessage::Read { .. } => "Read",
            PeerMessage::ReadAck { .. } => "ReadAck",
            PeerMessage::Write { .. } => "Write",
            PeerMessage::WriteAck { .. } => "WriteAck",
            PeerMessage::Gossip { .. } => "Gossip",
            PeerMessage::AntiEntropy(_) => "AntiEntropy",
            PeerMessage::AntiEntropyReply(_) => "AntiEntropyReply",
            PeerMessage::AntiEntropyKeys(_) => "AntiEntropyKeys",
            PeerMessage::AntiEntropyKeysReply(_) => "AntiEntropyKeysReply",
            PeerMessage::AntiEntropyPush { .. } => "AntiEntropyPush",
        }
    }

    /// The operation a data message belongs to; `None` for gossip and anti-entropy.
    pub fn op_id(&self) -> Option<OpId> {
        match self {
            PeerMessage::ReadTag { req, .. }
            | PeerMessage::ReadTagAck { req, .. }
            | PeerMessage::Read { req, .. }
            | PeerMessage::ReadAck { req, .. }
            | PeerMessage::Write { req, .. }
            | PeerMessage::WriteAck { req } => Some(*req),
            PeerMessage::Gossip { .. }
            | PeerMessage::AntiEntropy(_)
            | PeerMessage::AntiEntropyReply(_)
            | PeerMessage::AntiEntropyKeys(_)
            | PeerMessage::AntiEntropyKeysReply(_)
            | PeerMessage::AntiEntropyPush { .. } => None,
        }
    }
}

//! What a node reports about anti-entropy (`NodeStatus::anti_entropy`).

use crate::ring::{NodeId, TokenRange};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AntiEntropyStatus {
    /// Whether this node starts exchanges (`anti_entropy_interval_ms > 0`). It answers
    /// peers' exchanges and keeps its trees either way.
    pub initiating: bool,
    /// Bytes of all Merkle trees.
    pub tree_memory_bytes: usize,
    pub exchanges_in_flight: usize,
    /// Ranges with at least one finished exchange (in sync or repaired) since open.
    pub ranges_exchanged: usize,
    /// The least recent finish time (local clock) over all ranges, once every range has
    /// finished an exchange; `None` before that. A full sweep is done when this is newer
    /// than the moment of interest.
    pub oldest_exchange_ms: Option<u64>,
    pub counters: AntiEntropyCounters,
    /// Every range (ring segment) this node replicates, ordered by range end.
    pub ranges: Vec<RangeStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeStatus {
    pub range: TokenRange,
    /// The range's replicas in preference order, this node included.
    pub replicas: Vec<NodeId>,
    pub depth: u8,
    /// The Merkle root: co-replicas whose roots match hold the same versions.
    pub root: u64,
    pub last_exchange: Option<LastExchange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastExchange {
    /// When it finished, this node's clock.
    pub at_ms: u64,
    pub peer: NodeId,
    /// Roots (or all compared buckets) matched; otherwise differing keys were repaired.
    pub in_sync: bool,
}

/// Monotonic counters since open (exchanges this node initiated, unless noted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AntiEntropyCounters {
    /// Root rounds started: one per interval at most, each comparing every range
    /// shared with one peer.
    pub root_rounds: u64,
    /// Root rounds dropped with parts unanswered (peer silent or dead).
    pub root_rounds_abandoned: u64,
    /// Root batch messages sent, resends included.
    pub root_batches: u64,
    /// Ranges whose roots a peer compared (answered parts only).
    pub roots_compared: u64,
    /// Of those, found differing (queued for a descent) ...
    pub roots_differing: u64,
    /// ... or not comparable (the peer lacks the range at that depth).
    pub roots_unknown: u64,
    /// Descents started (ranges whose roots differed).
    pub exchanges_started: u64,
    /// Descents that found no differing bucket (the difference vanished meanwhile).
    pub exchanges_in_sync: u64,
    /// Finished after comparing and pushing the differing buckets' keys.
    pub exchanges_repaired: u64,
    /// Dropped: the peer stopped answering or died, rejected the range (other layout or
    /// Merkle config), sent something malformed, or storage failed.
    pub exchanges_abandoned: u64,
    /// Differing leaf buckets found.
    pub buckets_differing: u64,
    /// Key pages compared (as initiator).
    pub key_pages: u64,
    /// Registers pushed to peers (as initiator or responder).
    pub keys_pushed: u64,
    /// Exchange steps and key pages resent after a timeout.
    pub resends: u64,
    /// Root batches, exchange requests and key pages answered for peers.
    pub requests_answered: u64,
    /// Responses for exchanges or root parts no longer in flight (late, duplicate or
    /// malformed).
    pub stale_responses: u64,
}

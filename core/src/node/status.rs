//! What a node reports about itself: members and their states, the ring, counters.

use std::collections::BTreeMap;

use crate::ring::{NodeId, NodeSpec, RingLayout};

use super::ae::AntiEntropyStatus;
use super::gossip::MemberState;
use super::membership::MembershipStatus;

#[derive(Debug, Clone, PartialEq)]
pub struct NodeStatus {
    pub id: NodeId,
    /// Run number of this node (bumped durably on every open).
    pub incarnation: u64,
    /// The node's clock as of the last `handle` call (host-supplied, maybe skewed).
    pub now_ms: u64,
    /// The committed layout (a change in progress: `membership`).
    pub layout: RingLayout,
    /// Role, layout change in progress, sync progress, Paxos counters.
    pub membership: MembershipStatus,
    /// Largest layout epoch a peer has gossiped (above `membership.epoch` while this
    /// node has not yet fetched a newer history).
    pub newest_layout_version_seen: u64,
    /// Every member of the committed and pending layouts, this node included (if a
    /// member), ordered by id.
    pub members: Vec<MemberStatus>,
    pub in_flight_requests: usize,
    pub queued_outputs: usize,
    pub counters: NodeCounters,
    /// The most recent storage failure: while the engine fails, this node acknowledges
    /// nothing as a replica (it never acks what is not durable).
    pub last_storage_error: Option<String>,
    /// Where persisted identity or membership overrode the configuration, and what
    /// opening had to repair (e.g. building the position index).
    pub notes: Vec<String>,
    /// Eventual mode: hints this node holds, by the node they are for (targets with
    /// none are absent). Durable; handed off when gossip shows the target alive.
    pub hint_queues: BTreeMap<NodeId, u64>,
    /// Merkle trees per range (roots, for "matching roots" views), exchange progress.
    pub anti_entropy: AntiEntropyStatus,
    /// Tombstone purge: floor, confirmation round, tombstones held and purged.
    pub purge: super::purge::PurgeStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    pub spec: NodeSpec,
    pub state: MemberState,
    pub incarnation: u64,
    pub heartbeat: u64,
    /// Local time since its heartbeat last rose here (0 for this node).
    pub quiet_ms: u64,
}

/// Monotonic counters since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeCounters {
    /// Client requests received.
    pub requests: u64,
    /// Replies `Value` or `Done`.
    pub succeeded: u64,
    pub unavailable: u64,
    pub indeterminate: u64,
    pub overloaded: u64,
    /// `TooLarge` and `Unsupported` replies.
    pub rejected: u64,
    /// Requests refused with `Unavailable` before sending anything (too few replicas
    /// believed alive); included in `unavailable`.
    pub refused_unreachable: u64,
    /// Phase messages sent again to replicas that had not answered.
    pub retransmissions: u64,
    /// Gets whose quorum disagreed on the tag and that wrote the newest value back.
    pub write_backs: u64,
    /// Replica writes that stored a new (larger) tag.
    pub writes_applied: u64,
    /// Replica messages not answered because storage failed.
    pub storage_errors: u64,
    /// Replies for operations no longer in flight (or not counted: duplicate, wrong
    /// phase, not a replica of the key). Includes the acks of eventual-mode read
    /// repairs, which nobody waits for.
    pub stale_replies: u64,
    /// Peer messages ignored: from non-members, over the size limits, or gossip about
    /// unknown nodes.
    pub messages_ignored: u64,
    /// Sends dropped because the output queue was full.
    pub sends_dropped: u64,
    pub gossip_rounds: u64,
    /// Eventual mode: hints this node started holding for another node (a new
    /// `h/` record; merging into an existing hint does not count).
    pub hints_queued: u64,
    /// Eventual mode: hints handed off (the target durably acknowledged them) and
    /// deleted here.
    pub hints_delivered: u64,
    /// Eventual mode: writes this node refused because its hint queue was full.
    pub hints_refused: u64,
    /// Eventual mode: sibling states this node stored as a replica (new or changed).
    pub eventual_writes_applied: u64,
    /// Eventual mode: merged states a get's coordinator sent to replicas that answered
    /// with an older state.
    pub read_repairs: u64,
    /// Registers this replica took from anti-entropy pushes (its tag was older, or it
    /// lacked the key). Not included in `writes_applied`.
    pub keys_repaired: u64,
    /// Puts and reads whose phase-2 write replicas refused under a conditional
    /// write's promise, and that started over.
    pub write_refusals: u64,
    /// Conditional-write rounds started again after refusals (contention, or a
    /// ballot below a replica's tag).
    pub update_retries: u64,
}

impl NodeStatus {
    pub fn member(&self, id: NodeId) -> Option<&MemberStatus> {
        self.members.iter().find(|member| member.spec.id == id)
    }
}

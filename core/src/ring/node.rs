//! Physical node identity as the ring sees it.

use serde::{Deserialize, Serialize};

/// Stable identity of a physical node. Assigned once, never reused: versioning dots
/// and ring tokens are both derived from it (see `docs/ring.md`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct NodeId(pub u64);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A ring member: where it is (failure domain) and how much it should hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeSpec {
    pub id: NodeId,
    /// Failure domain (rack, availability zone). Replicas of a key go to distinct zones
    /// while there are enough zones.
    pub zone: String,
    /// Relative weight in capacity units: a node gets `capacity` times the layout's
    /// vnodes per unit. 0 is allowed and means "member without data" (e.g. draining).
    pub capacity: u32,
    /// Where peers reach this node, in the host's terms (e.g. `127.0.0.1:7001`). Opaque
    /// to the core, which routes by [`NodeId`]; empty for a node that cannot accept
    /// connections (a browser replica, reached through a relay).
    pub address: String,
}

impl NodeSpec {
    pub fn new(id: u64, zone: impl Into<String>, capacity: u32) -> Self {
        NodeSpec {
            id: NodeId(id),
            zone: zone.into(),
            capacity,
            address: String::new(),
        }
    }

    /// This spec with `address` set.
    pub fn with_address(mut self, address: impl Into<String>) -> Self {
        self.address = address.into();
        self
    }
}

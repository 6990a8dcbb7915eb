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
}

impl NodeSpec {
    pub fn new(id: u64, zone: impl Into<String>, capacity: u32) -> Self {
        NodeSpec {
            id: NodeId(id),
            zone: zone.into(),
            capacity,
        }
    }
}

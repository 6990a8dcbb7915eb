//! Dots: the identity of one write event.

use serde::{Deserialize, Serialize};

use crate::ring::NodeId;

/// The `counter`-th write event coordinated by `node` for one key. Unique per key as
/// long as `node` keeps its state for that key (see [`super::Siblings::update`]).
/// Ordered by node then counter, only to iterate deterministically: dots of different
/// nodes are not causally comparable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    pub node: NodeId,
    pub counter: u64,
}

impl Dot {
    pub fn new(node: NodeId, counter: u64) -> Self {
        Dot { node, counter }
    }
}

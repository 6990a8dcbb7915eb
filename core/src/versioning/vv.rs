//! Version vectors: a downward-closed set of dots, one counter per node.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::dot::Dot;
use crate::ring::NodeId;

/// `{node: n}` stands for the dots `(node, 1..=n)`. Invariant: no zero entries (absent
/// means 0), so equal sets of dots have equal representations.
///
/// Used as the *causal context* of a key: what a replica (or a client, after a read) has
/// seen, live or superseded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "BTreeMap<NodeId, u64>", into = "BTreeMap<NodeId, u64>")]
pub struct VersionVector {
    counters: BTreeMap<NodeId, u64>,
}

impl VersionVector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Highest counter seen from `node` (0: none).
    pub fn get(&self, node: NodeId) -> u64 {
        self.counters.get(&node).copied().unwrap_or(0)
    }

    /// Whether `dot` is in the set.
    pub fn contains(&self, dot: Dot) -> bool {
        dot.counter <= self.get(dot.node)
    }

    /// Adds `dot` (and, by downward closure, every earlier dot of its node).
    pub fn observe(&mut self, dot: Dot) {
        if dot.counter > 0 {
            let entry = self.counters.entry(dot.node).or_insert(0);
            *entry = (*entry).max(dot.counter);
        }
    }

    /// Set union: pointwise max.
    pub fn merge(&mut self, other: &VersionVector) {
        for (node, counter) in &other.counters {
            self.observe(Dot::new(*node, *counter));
        }
    }

    /// `self ⊇ other`: everything `other` has seen, `self` has seen.
    pub fn descends(&self, other: &VersionVector) -> bool {
        other
            .counters
            .iter()
            .all(|(node, counter)| self.get(*node) >= *counter)
    }

    /// Neither descends from the other.
    pub fn concurrent_with(&self, other: &VersionVector) -> bool {
        !self.descends(other) && !other.descends(self)
    }

    pub fn iter(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        self.counters
            .iter()
            .map(|(node, counter)| (*node, *counter))
    }

    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }

    /// Number of nodes with a non-zero counter.
    pub fn len(&self) -> usize {
        self.counters.len()
    }
}

impl From<BTreeMap<NodeId, u64>> for VersionVector {
    fn from(mut counters: BTreeMap<NodeId, u64>) -> Self {
        counters.retain(|_, counter| *counter > 0);
        VersionVector { counters }
    }
}

impl From<VersionVector> for BTreeMap<NodeId, u64> {
    fn from(vector: VersionVector) -> Self {
        vector.counters
    }
}

impl FromIterator<(NodeId, u64)> for VersionVector {
    fn from_iter<I: IntoIterator<Item = (NodeId, u64)>>(pairs: I) -> Self {
        let mut vector = VersionVector::new();
        for (node, counter) in pairs {
            vector.observe(Dot::new(node, counter));
        }
        vector
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_semantics() {
        let a: VersionVector = [(NodeId(1), 2), (NodeId(2), 0)].into_iter().collect();
        let b: VersionVector = [(NodeId(1), 1), (NodeId(3), 1)].into_iter().collect();
        assert_eq!(a.len(), 1, "zero entries are dropped");
        assert!(a.contains(Dot::new(NodeId(1), 1)) && !a.contains(Dot::new(NodeId(1), 3)));
        assert!(a.concurrent_with(&b));
        let mut joined = a.clone();
        joined.merge(&b);
        assert!(joined.descends(&a) && joined.descends(&b) && !a.descends(&joined));
        assert_eq!(
            VersionVector::from(BTreeMap::from([(NodeId(4), 0)])),
            VersionVector::new()
        );
    }
}

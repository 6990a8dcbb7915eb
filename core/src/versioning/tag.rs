//! ABD version tags for `linearizable` mode.

use serde::{Deserialize, Serialize};

use crate::ring::NodeId;

/// Version of a linearizable register value: `(counter, node)`, compared
/// lexicographically (the field order is the comparison order).
///
/// ABD: a writer reads the highest tag from a quorum, then writes with
/// `highest.successor(self)`; readers return the value with the highest tag and write it
/// back. The node id breaks ties between writers that picked the same counter, so tags
/// of distinct writes never compare equal.
///
/// Why not wall clocks (last-writer-wins by timestamp): clocks of different nodes
/// disagree and jump (NTP steps, VM pauses, leap smear), so a write that *follows*
/// another in real time can carry a smaller timestamp and be silently discarded; the
/// order would also depend on which host coordinated. Counters learned from a quorum
/// order writes by what the writer had observed, which is what linearizability needs
/// (and the crate is sans-IO: it has no clock to read anyway).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Tag {
    pub counter: u64,
    pub node: NodeId,
}

impl Tag {
    /// Smaller than every tag a write produces: the version of a never-written register.
    pub const ZERO: Tag = Tag {
        counter: 0,
        node: NodeId(0),
    };

    /// The tag a write by `writer` takes after observing `self` as the highest tag.
    /// `None` once the counter is exhausted (only reachable from a forged tag).
    pub fn successor(self, writer: NodeId) -> Option<Tag> {
        Some(Tag {
            counter: self.counter.checked_add(1)?,
            node: writer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_counter_then_node() {
        let a = Tag {
            counter: 1,
            node: NodeId(9),
        };
        let b = Tag {
            counter: 2,
            node: NodeId(1),
        };
        let c = Tag {
            counter: 2,
            node: NodeId(3),
        };
        assert!(Tag::ZERO < a && a < b && b < c);
        assert_eq!(a.successor(NodeId(1)), Some(b));
        assert!(a.successor(NodeId(1)) < a.successor(NodeId(2)));
        assert_eq!(
            Tag {
                counter: u64::MAX,
                node: NodeId(1)
            }
            .successor(NodeId(1)),
            None
        );
    }
}

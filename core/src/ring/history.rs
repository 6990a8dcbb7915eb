//! Membership over time: the committed layout and at most one change in flight.
//!
//! A change from layout `Lc` (version v) to `Ln` (version v + 1) is chosen once,
//! cluster-wide (single-decree Paxos among `Lc`'s members, `node/membership/`), then
//! spread as this history. While it is pending:
//! - operations use **joint quorums**: a majority of the key's replicas in `Lc` *and*
//!   in `Ln` ([`LayoutHistory::replica_sets`]), so they intersect both the operations
//!   that still run on `Lc` alone and those that already run on `Ln` alone;
//! - every node that gains a range in `Ln` pulls it from a majority of its `Lc` replicas
//!   and then joins `synced`.
//!
//! `Ln` is committed (and `Lc` forgotten) once, for every range whose replica set
//! changes, a majority of its `Ln` replicas is in `synced`: from then on every value
//! acknowledged on `Lc` is held by a majority of `Ln`. The commit is a pure function of
//! the history, so every node reaches it from the same gossip without another round.
//!
//! `epoch()` (the newest version known) travels in every data message; replicas refuse
//! older ones (`node/membership/`), which fences coordinators that still use `Lc` alone.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::layout::RingLayout;
use super::node::NodeId;
use super::ownership::{ranges_moved, MovedRange};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HistoryError {
    #[error("layout version {found} cannot follow version {committed} (must be {committed} + 1)")]
    NotNext { committed: u64, found: u64 },
    #[error("a change to layout version {0} is already in progress")]
    Busy(u64),
    #[error("synced node {0} is not a member of the pending layout")]
    SyncedNotMember(NodeId),
}

/// The committed layout, the pending one (if a change is in progress) and which of the
/// pending layout's members hold their new ranges.
///
/// Equality compares `(committed, pending, synced)`; the moved ranges are derived from
/// the two layouts on first use (never while decoding) and shared by clones.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "HistoryWire", into = "HistoryWire")]
pub struct LayoutHistory {
    committed: RingLayout,
    pending: Option<RingLayout>,
    synced: BTreeSet<NodeId>,
    /// The synced members that completed the commit of `committed`, as far as this node
    /// knows (at least itself, if it synced). A member's report thus still carries its
    /// own "I synced" after it committed, for members that missed it (what they accept
    /// from it: `node/membership/confirm.rs`). Not part of equality.
    committed_by: BTreeSet<NodeId>,
    /// Derived from `(committed, pending)`: the ranges whose replica set changes. Must be
    /// replaced whenever either layout changes.
    moved: Arc<OnceLock<Vec<MovedRange>>>,
}

// Without the derived moved ranges (large; and whether computed yet must not show).
impl std::fmt::Debug for LayoutHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayoutHistory")
            .field("committed", &self.committed)
            .field("pending", &self.pending)
            .field("synced", &self.synced)
            .field("committed_by", &self.committed_by)
            .finish()
    }
}

impl PartialEq for LayoutHistory {
    fn eq(&self, other: &Self) -> bool {
        self.committed == other.committed
            && self.pending == other.pending
            && self.synced == other.synced
    }
}

impl Eq for LayoutHistory {}

impl LayoutHistory {
    pub fn new(committed: RingLayout) -> Self {
        LayoutHistory {
            committed,
            pending: None,
            synced: BTreeSet::new(),
            committed_by: BTreeSet::new(),
            moved: Arc::default(),
        }
    }

    /// `committed`, learned as committed; `by`: members known to have synced for it.
    pub fn committed_by_members(committed: RingLayout, by: BTreeSet<NodeId>) -> Self {
        let mut history = LayoutHistory::new(committed);
        history.committed_by = by
            .into_iter()
            .filter(|id| history.committed.node(*id).is_some())
            .collect();
        history
    }

    /// Members known to have synced for the committed layout (see the field).
    pub fn committed_by(&self) -> &BTreeSet<NodeId> {
        &self.committed_by
    }

    pub fn committed(&self) -> &RingLayout {
        &self.committed
    }

    pub fn pending(&self) -> Option<&RingLayout> {
        self.pending.as_ref()
    }

    pub fn synced(&self) -> &BTreeSet<NodeId> {
        &self.synced
    }

    /// Ranges whose replica set differs between the committed and pending layouts
    /// (computed on the first call: both rings and a walk per range).
    pub fn moved(&self) -> &[MovedRange] {
        self.moved.get_or_init(|| match &self.pending {
            Some(pending) => ranges_moved(&self.committed, pending),
            None => Vec::new(),
        })
    }

    /// The newest layout version known: what data messages carry.
    pub fn epoch(&self) -> u64 {
        self.newest().version()
    }

    /// A number that grows with every step of the history (a change chosen, a change
    /// committed): `2 × committed version + 1 while a change is pending`. Gossip
    /// carries it, so a node that missed a commit (same epoch, older state) hears of it.
    pub fn stamp(&self) -> u64 {
        self.committed
            .version()
            .saturating_mul(2)
            .saturating_add(u64::from(self.pending.is_some()))
    }

    /// The pending layout if any, else the committed one.
    pub fn newest(&self) -> &RingLayout {
        self.pending.as_ref().unwrap_or(&self.committed)
    }

    /// Members of the committed or the pending layout.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let mut ids: BTreeSet<NodeId> = self.committed.nodes().keys().copied().collect();
        if let Some(pending) = &self.pending {
            ids.extend(pending.nodes().keys().copied());
        }
        ids
    }

    pub fn is_member(&self, id: NodeId) -> bool {
        self.committed.node(id).is_some()
            || self.pending.as_ref().is_some_and(|p| p.node(id).is_some())
    }

    /// The replica sets an operation on `key` needs a majority of: the committed
    /// layout's, plus the pending layout's while a change is in progress and it differs.
    pub fn replica_sets(&self, key: &[u8]) -> Vec<Vec<NodeId>> {
        let old = self.committed.preference_list(key);
        match &self.pending {
            None => vec![old],
            Some(pending) => {
                let new = pending.preference_list(key);
                if same_set(&old, &new) {
                    vec![old]
                } else {
                    vec![old, new]
                }
            }
        }
    }

    /// Starts the change to `next` (chosen for version `committed + 1`). Beginning the
    /// same change twice is a no-op.
    pub fn begin(&mut self, next: RingLayout) -> Result<(), HistoryError> {
        if let Some(pending) = &self.pending {
            return if *pending == next {
                Ok(())
            } else {
                Err(HistoryError::Busy(pending.version()))
            };
        }
        if Some(next.version()) != self.committed.version().checked_add(1) {
            return Err(HistoryError::NotNext {
                committed: self.committed.version(),
                found: next.version(),
            });
        }
        self.moved = Arc::default();
        self.pending = Some(next);
        self.synced.clear();
        self.try_commit();
        Ok(())
    }

    /// Records that `node` holds its ranges of the pending layout; commits if that
    /// completes the change. Returns whether anything changed.
    pub fn mark_synced(&mut self, node: NodeId) -> bool {
        let member = self
            .pending
            .as_ref()
            .is_some_and(|p| p.node(node).is_some());
        if !member || !self.synced.insert(node) {
            return false;
        }
        self.try_commit();
        true
    }

    /// Whether every moved range has a majority of its new replicas synced.
    pub fn sync_complete(&self) -> bool {
        self.pending.is_some()
            && self.moved().iter().all(|(_, _, new_owners)| {
                let synced = new_owners
                    .iter()
                    .filter(|id| self.synced.contains(id))
                    .count();
                synced > new_owners.len() / 2 || new_owners.is_empty()
            })
    }

    fn try_commit(&mut self) {
        if self.sync_complete() {
            if let Some(pending) = self.pending.take() {
                self.committed = pending;
                self.committed_by = std::mem::take(&mut self.synced);
                self.moved = Arc::default();
            }
        }
    }
}

fn same_set(a: &[NodeId], b: &[NodeId]) -> bool {
    a.len() == b.len() && a.iter().all(|id| b.contains(id))
}

/// Serialized form: the invariants are re-checked on decode and `moved` is derived on
/// first use, so a peer cannot hand over an inconsistent history and decoding costs
/// time proportional to the bytes.
#[derive(Serialize, Deserialize)]
struct HistoryWire {
    committed: RingLayout,
    pending: Option<RingLayout>,
    synced: Vec<NodeId>,
    committed_by: Vec<NodeId>,
}

impl TryFrom<HistoryWire> for LayoutHistory {
    type Error = HistoryError;

    fn try_from(wire: HistoryWire) -> Result<Self, HistoryError> {
        let mut history = LayoutHistory::from_parts(wire.committed, wire.pending, wire.synced)?;
        for node in wire.committed_by {
            if history.committed.node(node).is_none() {
                return Err(HistoryError::SyncedNotMember(node));
            }
            history.committed_by.insert(node);
        }
        Ok(history)
    }
}

impl LayoutHistory {
    /// A history from its parts (decoded from a peer or a record), checked: the pending
    /// layout follows the committed one, synced nodes are its members. Derives nothing.
    pub fn from_parts(
        committed: RingLayout,
        pending: Option<RingLayout>,
        synced: impl IntoIterator<Item = NodeId>,
    ) -> Result<Self, HistoryError> {
        let mut history = LayoutHistory::new(committed);
        if let Some(pending) = pending {
            // As `begin`, without deriving the moved ranges (nor committing a change
            // that moves nothing: the receiver's merge does that).
            let committed = history.committed.version();
            if Some(pending.version()) != committed.checked_add(1) {
                return Err(HistoryError::NotNext {
                    committed,
                    found: pending.version(),
                });
            }
            history.pending = Some(pending);
        }
        for node in synced {
            let member = history
                .pending
                .as_ref()
                .is_some_and(|p| p.node(node).is_some());
            if !member {
                return Err(HistoryError::SyncedNotMember(node));
            }
            history.synced.insert(node);
        }
        Ok(history)
    }
}

impl From<LayoutHistory> for HistoryWire {
    fn from(history: LayoutHistory) -> Self {
        HistoryWire {
            committed: history.committed,
            pending: history.pending,
            synced: history.synced.into_iter().collect(),
            committed_by: history.committed_by.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::NodeSpec;

    fn layout(version: u64, ids: &[u64]) -> RingLayout {
        RingLayout::from_parts(
            version,
            3,
            16,
            ids.iter().map(|id| NodeSpec::new(*id, "z", 1)),
        )
        .expect("layout")
    }

    #[test]
    fn a_change_commits_once_a_majority_of_each_moved_ranges_new_replicas_synced() {
        let mut history = LayoutHistory::new(layout(1, &[1, 2, 3]));
        history.begin(layout(2, &[1, 2, 3, 4])).expect("begin");
        assert_eq!(history.epoch(), 2);
        assert!(!history.moved().is_empty());
        assert!(history.begin(layout(2, &[1, 2, 3, 5])).is_err());
        // Node 4 is a new replica of every moved range; one more per range is needed.
        assert!(history.mark_synced(NodeId(4)));
        assert!(!history.mark_synced(NodeId(4)));
        assert!(!history.mark_synced(NodeId(9)));
        for id in [1, 2, 3] {
            history.mark_synced(NodeId(id));
        }
        assert_eq!(history.committed().version(), 2);
        assert!(history.pending().is_none());
        assert_eq!(history.replica_sets(b"k").len(), 1);
    }

    #[test]
    fn joint_replica_sets_while_pending_and_the_commit_remembers_who_synced() {
        let mut history = LayoutHistory::new(layout(1, &[1, 2, 3]));
        history.begin(layout(2, &[1, 2, 3, 4])).expect("begin");
        let joint = (0..200)
            .map(|i| history.replica_sets(format!("k{i}").as_bytes()))
            .filter(|sets| sets.len() == 2)
            .count();
        assert!(joint > 0);
        let mut marked = BTreeSet::new();
        for id in [4, 1, 2, 3] {
            if history.pending().is_some() {
                assert!(history.mark_synced(NodeId(id)));
                marked.insert(NodeId(id));
            }
        }
        assert_eq!(history.committed().version(), 2);
        assert_eq!(history.committed_by(), &marked);
        let bytes = postcard::to_allocvec(&history).expect("encode");
        let back: LayoutHistory = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back.committed_by(), history.committed_by());
    }

    #[test]
    fn decoding_a_history_derives_neither_ring_nor_moved_ranges() {
        // The largest ring the limits allow (TOKENS_TOTAL_MAX tokens) in a frame of a
        // few KiB: decoding it must cost about the frame, not the ring (4 MiB of tokens,
        // a walk per range); the receiver derives them only if it adopts the history.
        use crate::ring::layout::{TOKENS_PER_NODE_MAX, TOKENS_TOTAL_MAX};
        let capacity = (TOKENS_PER_NODE_MAX / 512) as u32;
        let nodes = TOKENS_TOTAL_MAX / TOKENS_PER_NODE_MAX;
        let spec = |id: u64| NodeSpec::new(id, format!("zone-{}", id % 3), capacity);
        let committed = RingLayout::from_parts(1, 3, 512, (1..nodes).map(spec)).expect("committed");
        let pending = RingLayout::from_parts(2, 3, 512, (1..=nodes).map(spec)).expect("pending");
        let mut history = LayoutHistory::new(committed);
        history.begin(pending).expect("begin");
        let frame = postcard::to_allocvec(&history).expect("encode");
        let (decoded, peak_bytes) = crate::alloc_count::peak_allocated(|| {
            postcard::from_bytes::<LayoutHistory>(&frame).expect("decode")
        });
        assert!(
            peak_bytes <= 64 * frame.len(),
            "decoding a {} byte history allocated {peak_bytes} bytes",
            frame.len()
        );
        assert_eq!(decoded, history);
        // Derived on use, and the same as the sender's.
        assert_eq!(decoded.moved(), history.moved());
        assert_eq!(
            decoded.pending().map(|p| p.tokens().len() as u64),
            Some(TOKENS_TOTAL_MAX)
        );
    }

    #[test]
    fn wire_form_round_trips_and_rejects_inconsistent_histories() {
        let mut history = LayoutHistory::new(layout(1, &[1, 2, 3]));
        history.begin(layout(2, &[1, 2, 3, 4])).expect("begin");
        history.mark_synced(NodeId(4));
        let bytes = postcard::to_allocvec(&history).expect("encode");
        let back: LayoutHistory = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back, history);
        let bad = HistoryWire {
            committed: layout(1, &[1, 2, 3]),
            pending: Some(layout(3, &[1, 2])),
            synced: vec![],
            committed_by: vec![],
        };
        let bytes = postcard::to_allocvec(&bad).expect("encode");
        assert!(postcard::from_bytes::<LayoutHistory>(&bytes).is_err());
    }
}

//! All of one node's trees: one per ring segment whose preference list contains it.
//!
//! Why segments (`RingLayout::segments`) and not `primary_ranges`: co-replicas must
//! build trees over *identical* ranges to compare them. `primary_ranges(node)`
//! coalesces adjacent segments with different replica sets, so two nodes' lists cut the
//! ring differently; segments are cut where the preference list changes, the same on
//! every member with the same layout, and each carries its replica set (the peers to
//! exchange with).

use crate::ring::{key_position, NodeId, Position, RingLayout, TokenRange};

use super::config::MerkleConfig;
use super::config::MAX_ROOTS_PER_MESSAGE;
use super::error::AntiEntropyError;
use super::hash::VersionDigest;
use super::message::{ExchangeRequest, ExchangeResponse, RootBatch, RootBatchReply};
use super::tree::MerkleTree;

#[derive(Debug, Clone)]
pub struct MerkleSet {
    node: NodeId,
    layout_version: u64,
    config: MerkleConfig,
    /// Disjoint ranges sorted by `end_inclusive` (distinct for disjoint arcs), each with
    /// its replica set in preference order.
    trees: Vec<(MerkleTree, Vec<NodeId>)>,
}

/// What [`MerkleSet::rebuild_from`] saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RebuildStats {
    pub tracked: u64,
    /// Entries in no range of this node (data awaiting hand-off or cleanup).
    pub untracked: u64,
}

impl MerkleSet {
    /// Empty trees for every segment of `layout` that `node` replicates. Call
    /// [`MerkleSet::rebuild_from`] next to load the node's data.
    pub fn new(layout: &RingLayout, node: NodeId, config: MerkleConfig) -> Self {
        let mut trees: Vec<(MerkleTree, Vec<NodeId>)> = layout
            .segments()
            .into_iter()
            .filter(|(_, owners)| owners.contains(&node))
            .filter_map(|(range, owners)| {
                // depth_for never exceeds MAX_DEPTH, so `new` cannot fail here.
                let tree = MerkleTree::new(range, config.depth_for(&range)).ok()?;
                Some((tree, owners))
            })
            .collect();
        trees.sort_by_key(|(tree, _)| tree.range().end_inclusive);
        MerkleSet {
            node,
            layout_version: layout.version(),
            config,
            trees,
        }
    }

    /// Clears every tree and loads `entries` (the node's whole `(key, digest)` set): the
    /// one full scan, done when the layout changes. Afterwards keep the trees current
    /// with `insert` / `update` / `remove` on every write.
    pub fn rebuild_from<K: AsRef<[u8]>>(
        &mut self,
        entries: impl IntoIterator<Item = (K, VersionDigest)>,
    ) -> RebuildStats {
        self.trees.iter_mut().for_each(|(tree, _)| tree.clear());
        let mut stats = RebuildStats::default();
        for (key, digest) in entries {
            if self.insert(key.as_ref(), digest) {
                stats.tracked += 1;
            } else {
                stats.untracked += 1;
            }
        }
        stats
    }

    pub fn node(&self) -> NodeId {
        self.node
    }

    pub fn layout_version(&self) -> u64 {
        self.layout_version
    }

    pub fn config(&self) -> MerkleConfig {
        self.config
    }

    pub fn len(&self) -> usize {
        self.trees.len()
    }

    pub fn is_empty(&self) -> bool {
        self.trees.is_empty()
    }

    /// Every tree with its range's replicas (preference order, this node included).
    pub fn iter(&self) -> impl Iterator<Item = (&MerkleTree, &[NodeId])> {
        self.trees
            .iter()
            .map(|(tree, owners)| (tree, owners.as_slice()))
    }

    /// Total bytes of all trees' node arrays.
    pub fn memory_bytes(&self) -> usize {
        self.trees.iter().map(|(tree, _)| tree.memory_bytes()).sum()
    }

    pub fn tree(&self, range: &TokenRange) -> Option<&MerkleTree> {
        let index = self.index_of_range(range)?;
        self.trees.get(index).map(|(tree, _)| tree)
    }

    pub fn replicas(&self, range: &TokenRange) -> Option<&[NodeId]> {
        let index = self.index_of_range(range)?;
        self.trees.get(index).map(|(_, owners)| owners.as_slice())
    }

    /// The tree whose range holds `key`, if this node replicates it.
    pub fn tree_for_key(&self, key: &[u8]) -> Option<&MerkleTree> {
        let index = self.index_of_position(key_position(key))?;
        self.trees.get(index).map(|(tree, _)| tree)
    }

    /// Records a new key. Returns `false` (and changes nothing) if the key is in no
    /// range of this node.
    pub fn insert(&mut self, key: &[u8], digest: VersionDigest) -> bool {
        self.tree_mut(key)
            .is_some_and(|tree| tree.insert(key, digest).is_ok())
    }

    pub fn remove(&mut self, key: &[u8], digest: VersionDigest) -> bool {
        self.tree_mut(key)
            .is_some_and(|tree| tree.remove(key, digest).is_ok())
    }

    pub fn update(&mut self, key: &[u8], old: VersionDigest, new: VersionDigest) -> bool {
        self.tree_mut(key)
            .is_some_and(|tree| tree.update(key, old, new).is_ok())
    }

    /// Answers a peer's request from the matching tree; errors become `Rejected`.
    pub fn respond(&self, request: &ExchangeRequest) -> ExchangeResponse {
        let range = request.range();
        let answer = match self.tree(&range) {
            Some(tree) => tree.respond(request),
            None => Err(AntiEntropyError::UnknownRange(range)),
        };
        answer.unwrap_or_else(|error| request.rejection(error.reject_reason()))
    }

    /// Answers a peer's root batch from the trees as they are now: which entries differ
    /// and which this node cannot compare (no tree of that range and depth, or `from`
    /// is not one of the range's replicas: only co-replicas compare). Stateless, so a
    /// duplicate batch is answered again identically (given the same trees). Fails,
    /// allocating nothing, if the batch breaks [`MAX_ROOTS_PER_MESSAGE`].
    pub fn compare_roots(
        &self,
        from: NodeId,
        batch: &RootBatch,
    ) -> Result<RootBatchReply, AntiEntropyError> {
        if batch.roots.len() > MAX_ROOTS_PER_MESSAGE {
            return Err(AntiEntropyError::TooManyHashes {
                count: batch.roots.len(),
            });
        }
        let mut differing = Vec::new();
        let mut unknown = Vec::new();
        // len ≤ 256, so every offset fits u16.
        for (offset, entry) in (0u16..).zip(&batch.roots) {
            let shared = self.index_of_range(&entry.range).and_then(|index| {
                let (tree, owners) = self.trees.get(index)?;
                let ok = from != self.node && owners.contains(&from) && tree.depth() == entry.depth;
                ok.then_some(tree)
            });
            match shared {
                None => unknown.push(offset),
                Some(tree) if tree.root() != entry.root => differing.push(offset),
                Some(_) => {}
            }
        }
        Ok(RootBatchReply {
            id: batch.id,
            part: batch.part,
            differing,
            unknown,
        })
    }

    fn tree_mut(&mut self, key: &[u8]) -> Option<&mut MerkleTree> {
        let index = self.index_of_position(key_position(key))?;
        self.trees.get_mut(index).map(|(tree, _)| tree)
    }

    fn index_of_range(&self, range: &TokenRange) -> Option<usize> {
        let index = self
            .trees
            .binary_search_by_key(&range.end_inclusive, |(tree, _)| tree.range().end_inclusive)
            .ok()?;
        let found = self.trees.get(index)?;
        (found.0.range() == *range).then_some(index)
    }

    /// Disjoint arcs: the one holding `position` is the first whose end is at or
    /// clockwise after it, i.e. the first end `>= position`, else (wrapping) the first.
    fn index_of_position(&self, position: Position) -> Option<usize> {
        let first_after = self
            .trees
            .partition_point(|(tree, _)| tree.range().end_inclusive < position);
        let index = if first_after < self.trees.len() {
            first_after
        } else {
            0
        };
        let (tree, _) = self.trees.get(index)?;
        tree.range().contains(position).then_some(index)
    }
}

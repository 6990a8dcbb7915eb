//! One range's hash tree.
//!
//! Shape: a complete binary tree of fixed `depth`, stored flat in heap order (node 1 is
//! the root, node `i` has children `2i` and `2i + 1`, level `l` holds nodes
//! `2^l .. 2^(l+1)`, leaves are level `depth`).
//!
//! Hashes are **sums**: a leaf is the wrapping sum of [`entry_hash`] over its entries
//! and every inner node the wrapping sum of its children, i.e. of every entry below it.
//! That makes an update a delta added along one leaf-to-root path (`depth + 1` adds,
//! one SipHash, no rescan, no rehash of siblings), and it makes the tree's value
//! independent of insertion order. A sum (rather than XOR) keeps a duplicated insert
//! visible instead of cancelling it out. Comparison strength: two subtrees whose entry
//! multisets differ collide only if the differences sum to 0 mod 2^64, probability
//! 2^-64 per compared node for non-adversarial keys (see `docs/antientropy.md`).

use crate::ring::{key_position, Position, TokenRange};

use super::bucket::{bucket_key_range, bucket_of};
use super::config::MAX_DEPTH;
use super::error::AntiEntropyError;
use super::hash::{entry_hash, VersionDigest};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    range: TokenRange,
    depth: u8,
    /// Heap-ordered node hashes, `2^(depth+1)` long; index 0 is unused (always 0).
    nodes: Vec<u64>,
}

impl MerkleTree {
    /// An empty tree (all hashes 0) over `range` with `2^depth` leaves.
    pub fn new(range: TokenRange, depth: u8) -> Result<Self, AntiEntropyError> {
        if depth > MAX_DEPTH {
            return Err(AntiEntropyError::DepthTooLarge { depth });
        }
        Ok(MerkleTree {
            range,
            depth,
            nodes: vec![0; 2usize << depth],
        })
    }

    /// A tree holding `entries` (keys outside `range` are skipped and counted): one pass
    /// over the entries plus one bottom-up pass over the nodes, O(entries + 2^depth).
    pub fn from_entries<K: AsRef<[u8]>>(
        range: TokenRange,
        depth: u8,
        entries: impl IntoIterator<Item = (K, VersionDigest)>,
    ) -> Result<(Self, u64), AntiEntropyError> {
        let mut tree = MerkleTree::new(range, depth)?;
        let mut skipped = 0u64;
        for (key, digest) in entries {
            let key = key.as_ref();
            match tree.leaf_index(key_position(key)) {
                Some(index) => {
                    if let Some(leaf) = tree.nodes.get_mut(index) {
                        *leaf = leaf.wrapping_add(entry_hash(key, digest));
                    }
                }
                None => skipped += 1,
            }
        }
        tree.recompute_inner();
        Ok((tree, skipped))
    }

    pub fn range(&self) -> TokenRange {
        self.range
    }

    pub fn depth(&self) -> u8 {
        self.depth
    }

    pub fn leaf_count(&self) -> u64 {
        1 << self.depth
    }

    /// Heap bytes of the node array (the tree's whole footprint, up to a few words).
    pub fn memory_bytes(&self) -> usize {
        self.nodes.len() * std::mem::size_of::<u64>()
    }

    pub fn root(&self) -> u64 {
        self.nodes.get(1).copied().unwrap_or(0)
    }

    /// Hash of node `index` (0-based, left to right) of `level` (0 = root).
    pub fn node_hash(&self, level: u8, index: u64) -> Option<u64> {
        if level > self.depth || index >> level != 0 {
            return None;
        }
        let heap = (1u64 << level) | index;
        self.nodes.get(usize::try_from(heap).ok()?).copied()
    }

    /// Hashes of nodes `index_start ..` (`len` of them) of `level`, or `None` if any is
    /// outside the level.
    pub fn level_hashes(&self, level: u8, index_start: u64, len: usize) -> Option<&[u64]> {
        let end = index_start.checked_add(u64::try_from(len).ok()?)?;
        if level > self.depth || end > 1u64 << level {
            return None;
        }
        let first = usize::try_from((1u64 << level) | index_start).ok()?;
        self.nodes.get(first..first.checked_add(len)?)
    }

    /// The leaf bucket `key` falls in, or `None` if it is outside the range.
    pub fn bucket_of_key(&self, key: &[u8]) -> Option<u64> {
        bucket_of(&self.range, self.depth, key_position(key))
    }

    /// Positions covered by leaf `bucket` (see [`bucket_key_range`]).
    pub fn bucket_key_range(&self, bucket: u64) -> Option<TokenRange> {
        bucket_key_range(&self.range, self.depth, bucket)
    }

    /// Adds an entry. The caller keeps the invariant "one entry per key held": insert a
    /// key once, then [`MerkleTree::update`] or [`MerkleTree::remove`] it.
    pub fn insert(&mut self, key: &[u8], digest: VersionDigest) -> Result<(), AntiEntropyError> {
        self.apply(key, entry_hash(key, digest))
    }

    /// Removes an entry previously inserted with `digest`.
    pub fn remove(&mut self, key: &[u8], digest: VersionDigest) -> Result<(), AntiEntropyError> {
        self.apply(key, entry_hash(key, digest).wrapping_neg())
    }

    /// Replaces `key`'s version `old` by `new` (one path walk).
    pub fn update(
        &mut self,
        key: &[u8],
        old: VersionDigest,
        new: VersionDigest,
    ) -> Result<(), AntiEntropyError> {
        self.apply(key, entry_hash(key, new).wrapping_sub(entry_hash(key, old)))
    }

    /// Resets every hash to 0 (an empty tree of the same shape).
    pub fn clear(&mut self) {
        self.nodes.iter_mut().for_each(|hash| *hash = 0);
    }

    /// Adds `delta` to `key`'s leaf and every ancestor: O(depth).
    fn apply(&mut self, key: &[u8], delta: u64) -> Result<(), AntiEntropyError> {
        let position = key_position(key);
        let Some(mut index) = self.leaf_index(position) else {
            return Err(AntiEntropyError::KeyOutsideRange {
                position,
                range: self.range,
            });
        };
        while index >= 1 {
            if let Some(hash) = self.nodes.get_mut(index) {
                *hash = hash.wrapping_add(delta);
            }
            index >>= 1;
        }
        Ok(())
    }

    /// Heap index of the leaf holding `position`.
    fn leaf_index(&self, position: Position) -> Option<usize> {
        let bucket = bucket_of(&self.range, self.depth, position)?;
        usize::try_from((1u64 << self.depth) | bucket).ok()
    }

    /// Sets every inner node to the sum of its children, bottom-up.
    fn recompute_inner(&mut self) {
        let leaves_start = 1usize << self.depth;
        for index in (1..leaves_start).rev() {
            let left = self.nodes.get(2 * index).copied().unwrap_or(0);
            let right = self.nodes.get(2 * index + 1).copied().unwrap_or(0);
            if let Some(hash) = self.nodes.get_mut(index) {
                *hash = left.wrapping_add(right);
            }
        }
    }
}

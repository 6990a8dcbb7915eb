//! The responder side and the comparison helpers: pure functions of one tree and one
//! message. Every bound is checked before use, so a malformed or hostile request yields
//! an [`AntiEntropyError`], never a panic or an unbounded allocation.

use super::config::MAX_HASHES_PER_MESSAGE;
use super::error::AntiEntropyError;
use super::message::{ExchangeRequest, ExchangeResponse, HashRun};
use super::tree::MerkleTree;

impl MerkleTree {
    /// Answers `request` from this tree as it is now. The node sends the `Ok` response,
    /// or `request.rejection(error.reject_reason())` on error.
    pub fn respond(&self, request: &ExchangeRequest) -> Result<ExchangeResponse, AntiEntropyError> {
        match request {
            ExchangeRequest::Root {
                id,
                range,
                depth,
                hash,
            } => {
                self.check_shape(range, *depth)?;
                Ok(ExchangeResponse::Root {
                    id: *id,
                    range: *range,
                    equal: *hash == self.root(),
                })
            }
            ExchangeRequest::Level {
                id,
                range,
                depth,
                level,
                part,
                runs,
            } => {
                self.check_shape(range, *depth)?;
                Ok(ExchangeResponse::Level {
                    id: *id,
                    range: *range,
                    level: *level,
                    part: *part,
                    differing: differing_offsets(self, *level, runs)?,
                })
            }
        }
    }

    fn check_shape(
        &self,
        range: &crate::ring::TokenRange,
        depth: u8,
    ) -> Result<(), AntiEntropyError> {
        if *range != self.range() {
            return Err(AntiEntropyError::UnknownRange(*range));
        }
        if depth != self.depth() {
            return Err(AntiEntropyError::DepthMismatch {
                ours: self.depth(),
                theirs: depth,
            });
        }
        Ok(())
    }
}

/// Offsets, into `runs`' hashes concatenated, of those that differ from `tree`'s nodes
/// at `level`: the comparison one round of the exchange makes. Fails if `level` or any
/// run is outside the tree, or the runs carry more than [`MAX_HASHES_PER_MESSAGE`].
pub fn differing_offsets(
    tree: &MerkleTree,
    level: u8,
    runs: &[HashRun],
) -> Result<Vec<u16>, AntiEntropyError> {
    if level > tree.depth() {
        return Err(AntiEntropyError::LevelOutOfRange {
            level,
            depth: tree.depth(),
        });
    }
    let count: usize = runs.iter().map(|run| run.hashes.len()).sum();
    if count > MAX_HASHES_PER_MESSAGE {
        return Err(AntiEntropyError::TooManyHashes { count });
    }
    let mut differing = Vec::new();
    let mut offset: u16 = 0;
    for run in runs {
        let ours = tree
            .level_hashes(level, run.index_start, run.hashes.len())
            .ok_or(AntiEntropyError::RunOutOfBounds {
                level,
                index_start: run.index_start,
                len: run.hashes.len(),
            })?;
        for (mine, theirs) in ours.iter().zip(&run.hashes) {
            if mine != theirs {
                differing.push(offset);
            }
            // count ≤ 256, so offsets fit u16 and never wrap.
            offset = offset.saturating_add(1);
        }
    }
    Ok(differing)
}

/// Leaf buckets whose hashes differ between two trees of the same range and depth,
/// found by descending only into differing subtrees (what the exchange computes across
/// the network, done locally: for tests, tools and co-located replicas).
pub fn diff_trees(a: &MerkleTree, b: &MerkleTree) -> Result<Vec<u64>, AntiEntropyError> {
    if a.range() != b.range() {
        return Err(AntiEntropyError::UnknownRange(b.range()));
    }
    if a.depth() != b.depth() {
        return Err(AntiEntropyError::DepthMismatch {
            ours: a.depth(),
            theirs: b.depth(),
        });
    }
    let depth = a.depth();
    let mut leaves = Vec::new();
    // Depth-first over (level, index), left child pushed last so buckets come out sorted.
    let mut stack = vec![(0u8, 0u64)];
    while let Some((level, index)) = stack.pop() {
        if a.node_hash(level, index) == b.node_hash(level, index) {
            continue;
        }
        if level == depth {
            leaves.push(index);
        } else {
            stack.push((level + 1, 2 * index + 1));
            stack.push((level + 1, 2 * index));
        }
    }
    Ok(leaves)
}

//! Limits and the depth policy: how many leaf buckets a range's tree gets.
//!
//! Depth is a pure function of `(range, config)`, so co-replicas that share a config
//! build trees of the same shape for the same range without negotiating. Every message
//! carries the sender's depth; a mismatch (configs differ) is rejected, never
//! mis-compared.

use serde::{Deserialize, Serialize};

use crate::ring::TokenRange;

/// Deepest tree: 2^16 leaves, `2^17 × 8 B` = 1 MiB per tree. Bounds memory for any
/// config and keeps `index << shift` far from overflow.
pub const MAX_DEPTH: u8 = 16;
/// Most hashes in one exchange request (and offsets in one response): bounds every
/// message at a few KiB whatever the trees hold.
pub const MAX_HASHES_PER_MESSAGE: usize = 256;
/// Most `(range, depth, root)` entries in one root batch (and offsets in its reply):
/// ~30 B per entry under postcard, so a batch stays under ~8 KiB. A node with ~1,500
/// ranges compares all those it shares with one peer in ⌈shared / 256⌉ messages.
pub const MAX_ROOTS_PER_MESSAGE: usize = 256;
/// Largest descent per round trip: `2^8` children of one node = one full message, so a
/// node's children never straddle two messages' worth of bookkeeping.
pub const MAX_FANOUT_LOG2: u8 = 8;

/// How deep each range's tree is.
///
/// A node replicates hundreds to thousands of ranges (one per ring segment whose
/// preference list contains it: about `N × vnodes` of them), so a fixed depth 12 for all
/// would cost `2 × 4096 × 8 B × ranges` (≈ 100 MiB for 1,500 ranges). Instead leaves are
/// spread over the ring: a range covering fraction `f` of the ring gets about
/// `f × 2^leaves_per_ring_log2` leaves, rounded down to a power of two and clamped to
/// `[min_depth, max_depth]` (and [`MAX_DEPTH`]). A node's total is then about
/// `(its share of the ring) × 2^leaves_per_ring_log2 × 16 B`, plus `2^min_depth` leaves
/// per tiny range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleConfig {
    pub leaves_per_ring_log2: u8,
    pub min_depth: u8,
    pub max_depth: u8,
}

impl Default for MerkleConfig {
    /// 2^20 leaves over the ring: 10^8 keys → ~100 keys per bucket to stream per
    /// difference; a node holding 3/5 of the ring spends ~10 MiB on trees.
    fn default() -> Self {
        MerkleConfig {
            leaves_per_ring_log2: 20,
            min_depth: 4,
            max_depth: 14,
        }
    }
}

impl MerkleConfig {
    /// Every range gets exactly `depth` (clamped to [`MAX_DEPTH`]).
    pub fn fixed(depth: u8) -> Self {
        MerkleConfig {
            leaves_per_ring_log2: 0,
            min_depth: depth,
            max_depth: depth,
        }
    }

    /// The depth of `range`'s tree. Never exceeds [`MAX_DEPTH`], whatever the fields.
    pub fn depth_for(&self, range: &TokenRange) -> u8 {
        // width ∈ [1, 2^64], so floor(log2) ∈ [0, 64].
        let width_log2 = 127 - range.width_positions().leading_zeros() as i32;
        let wanted = width_log2 + i32::from(self.leaves_per_ring_log2) - 64;
        let max = self.max_depth.min(MAX_DEPTH);
        let min = self.min_depth.min(max);
        let clamped = wanted.clamp(i32::from(min), i32::from(max));
        u8::try_from(clamped).unwrap_or(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_follows_width_within_bounds() {
        let config = MerkleConfig::default();
        assert_eq!(config.depth_for(&TokenRange::FULL), 14);
        // 1/1024 of the ring: 2^20 / 2^10 = 2^10 leaves.
        assert_eq!(config.depth_for(&TokenRange::new(0, 1 << 54)), 10);
        assert_eq!(config.depth_for(&TokenRange::new(5, 6)), 4);
        assert_eq!(
            MerkleConfig::fixed(12).depth_for(&TokenRange::new(5, 6)),
            12
        );
        assert_eq!(
            MerkleConfig::fixed(200).depth_for(&TokenRange::FULL),
            MAX_DEPTH
        );
        let inverted = MerkleConfig {
            leaves_per_ring_log2: 255,
            min_depth: 9,
            max_depth: 3,
        };
        assert_eq!(inverted.depth_for(&TokenRange::FULL), 3);
    }
}

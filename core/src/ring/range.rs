//! Arcs of the ring.

use serde::{Deserialize, Serialize};

use super::token::Position;

/// Number of positions on the ring (2^64), as `u128` so the full ring fits.
pub const RING_SIZE_POSITIONS: u128 = 1 << 64;

/// The arc `(start_exclusive, end_inclusive]`, walking clockwise (increasing positions,
/// wrapping from `u64::MAX` to 0).
///
/// - `start_exclusive < end_inclusive`: the plain interval.
/// - `start_exclusive > end_inclusive`: wraps past `u64::MAX`: `(start, MAX] ∪ [0, end]`.
/// - `start_exclusive == end_inclusive`: the **whole ring** (as in Cassandra). An empty
///   arc is never produced by this module, so the encoding is unambiguous.
///
/// A key at position `p` belongs to the arc ending at the first token `>= p`, so arcs
/// are closed on their token end; this matches [`super::RingLayout::preference_list`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TokenRange {
    pub start_exclusive: Position,
    pub end_inclusive: Position,
}

impl TokenRange {
    pub const FULL: TokenRange = TokenRange {
        start_exclusive: 0,
        end_inclusive: 0,
    };

    pub fn new(start_exclusive: Position, end_inclusive: Position) -> Self {
        TokenRange {
            start_exclusive,
            end_inclusive,
        }
    }

    pub fn is_full(&self) -> bool {
        self.start_exclusive == self.end_inclusive
    }

    pub fn wraps(&self) -> bool {
        self.start_exclusive > self.end_inclusive
    }

    pub fn contains(&self, position: Position) -> bool {
        let (start, end) = (self.start_exclusive, self.end_inclusive);
        if start < end {
            start < position && position <= end
        } else if start > end {
            position > start || position <= end
        } else {
            true
        }
    }

    /// Number of positions in the arc (`RING_SIZE_POSITIONS` for the full ring).
    pub fn width_positions(&self) -> u128 {
        if self.is_full() {
            RING_SIZE_POSITIONS
        } else {
            u128::from(self.end_inclusive.wrapping_sub(self.start_exclusive))
        }
    }

    /// Fraction of the ring this arc covers, in `(0, 1]`.
    pub fn fraction_of_ring(&self) -> f64 {
        self.width_positions() as f64 / RING_SIZE_POSITIONS as f64
    }

    /// Splits a wrapping arc into at most two non-wrapping pieces, `(start, MAX]` and
    /// `[0, end]` as inclusive bounds, for storage scans over ordered key hashes.
    pub fn to_inclusive_bounds(&self) -> Vec<(Position, Position)> {
        let (start, end) = (self.start_exclusive, self.end_inclusive);
        if self.is_full() {
            return vec![(0, u64::MAX)];
        }
        let mut pieces = Vec::with_capacity(2);
        if start < end {
            // start < end <= MAX, so start + 1 does not overflow.
            pieces.push((start + 1, end));
        } else {
            if start < u64::MAX {
                pieces.push((start + 1, u64::MAX));
            }
            pieces.push((0, end));
        }
        pieces
    }
}

impl std::fmt::Display for TokenRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "({:#018x}, {:#018x}]",
            self.start_exclusive, self.end_inclusive
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_wrapping_and_full_arcs() {
        let plain = TokenRange::new(10, 20);
        assert!(!plain.contains(10) && plain.contains(11) && plain.contains(20));
        assert!(!plain.contains(21));
        assert_eq!(plain.width_positions(), 10);

        let wrapping = TokenRange::new(u64::MAX - 1, 5);
        assert!(wrapping.wraps());
        assert!(wrapping.contains(u64::MAX) && wrapping.contains(0) && wrapping.contains(5));
        assert!(!wrapping.contains(u64::MAX - 1) && !wrapping.contains(6));
        assert_eq!(wrapping.width_positions(), 7);
        assert_eq!(
            wrapping.to_inclusive_bounds(),
            vec![(u64::MAX, u64::MAX), (0, 5)]
        );

        let from_max = TokenRange::new(u64::MAX, 3);
        assert_eq!(from_max.to_inclusive_bounds(), vec![(0, 3)]);
        assert_eq!(from_max.width_positions(), 4);

        let full = TokenRange::new(7, 7);
        assert!(full.contains(7) && full.contains(0) && full.contains(u64::MAX));
        assert_eq!(full.width_positions(), RING_SIZE_POSITIONS);
        assert_eq!(full.to_inclusive_bounds(), vec![(0, u64::MAX)]);
    }
}

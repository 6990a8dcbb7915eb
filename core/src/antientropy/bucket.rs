//! Leaf buckets: which positions of a range a leaf covers.
//!
//! The range's positions are numbered by clockwise offset from its start (`0` is the
//! first position after `start_exclusive`), and leaf `b` of a depth-`d` tree holds the
//! offsets `o` with `floor(o × 2^d / width) = b`: equal-width, contiguous slices in ring
//! order. Bucketing depends only on `(range, depth, key)`, never on which keys a
//! replica holds, so co-replicas agree on it.

use crate::ring::{Position, TokenRange};

use super::config::MAX_DEPTH;

/// The leaf bucket of `position` in a depth-`depth` tree over `range`, or `None` if the
/// position is outside the range or `depth` exceeds [`MAX_DEPTH`].
pub fn bucket_of(range: &TokenRange, depth: u8, position: Position) -> Option<u64> {
    if !range.contains(position) || depth > MAX_DEPTH {
        return None;
    }
    // Inside the range, so offset < width ≤ 2^64 and offset × 2^depth < 2^80.
    let offset = position.wrapping_sub(range.start_exclusive).wrapping_sub(1);
    let bucket = (u128::from(offset) << depth) / range.width_positions();
    u64::try_from(bucket).ok()
}

/// The arc of positions that leaf `bucket` covers, as a [`TokenRange`] (so
/// [`TokenRange::to_inclusive_bounds`] gives the one or two storage scans). `None` if
/// the bucket does not exist, holds no position (ranges narrower than `2^depth`), or
/// `depth` exceeds [`MAX_DEPTH`].
///
/// Depth 0 over the full ring yields the full ring (`start == end`); any other bucket is
/// narrower than the ring, so the arc encoding stays unambiguous.
pub fn bucket_key_range(range: &TokenRange, depth: u8, bucket: u64) -> Option<TokenRange> {
    if depth > MAX_DEPTH || u128::from(bucket) >> depth != 0 {
        return None;
    }
    let width = range.width_positions();
    // First offset of bucket b is ceil(b × width / 2^d); products < 2^81 (depth ≤ 16),
    // both bounds ≤ width ≤ 2^64.
    let first = ceil_shift(u128::from(bucket) * width, depth);
    let end = ceil_shift((u128::from(bucket) + 1) * width, depth);
    if first >= end {
        return None;
    }
    // Positions start + 1 + first ..= start + end (mod 2^64); truncation is the modulus.
    let start = range.start_exclusive;
    Some(TokenRange::new(
        start.wrapping_add(first as u64),
        start.wrapping_add(end as u64),
    ))
}

/// `ceil(value / 2^shift)` for `shift ≤ MAX_DEPTH`.
fn ceil_shift(value: u128, shift: u8) -> u128 {
    let mask = (1u128 << shift) - 1;
    (value >> shift) + u128::from(value & mask != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_range_in_order() {
        let ranges = [
            TokenRange::new(10, 10 + 1000),
            TokenRange::new(u64::MAX - 100, 200),
            TokenRange::new(7, 7),
            TokenRange::new(u64::MAX, 5),
        ];
        for range in ranges {
            for depth in [0u8, 1, 3, 8] {
                let mut expected_start = range.start_exclusive;
                let mut covered: u128 = 0;
                for bucket in 0..(1u64 << depth) {
                    let Some(arc) = bucket_key_range(&range, depth, bucket) else {
                        continue;
                    };
                    assert_eq!(
                        arc.start_exclusive, expected_start,
                        "{range} d{depth} b{bucket}"
                    );
                    expected_start = arc.end_inclusive;
                    covered += arc.width_positions();
                    for position in [arc.start_exclusive.wrapping_add(1), arc.end_inclusive] {
                        assert_eq!(bucket_of(&range, depth, position), Some(bucket));
                    }
                    if !arc.is_full() {
                        assert_ne!(bucket_of(&range, depth, arc.start_exclusive), Some(bucket));
                    }
                }
                assert_eq!(covered, range.width_positions(), "{range} d{depth}");
                assert_eq!(expected_start, range.end_inclusive);
            }
        }
    }

    #[test]
    fn narrow_ranges_have_empty_buckets_and_bad_input_is_none() {
        let range = TokenRange::new(100, 103);
        let present: Vec<u64> = (0..16)
            .filter(|bucket| bucket_key_range(&range, 4, *bucket).is_some())
            .collect();
        assert_eq!(present.len(), 3);
        assert_eq!(bucket_key_range(&range, 4, 16), None);
        assert_eq!(bucket_key_range(&range, MAX_DEPTH + 1, 0), None);
        assert_eq!(bucket_of(&range, 4, 100), None);
        assert_eq!(bucket_of(&range, 4, 104), None);
        assert_eq!(bucket_of(&range, MAX_DEPTH + 1, 101), None);
        assert_eq!(
            bucket_key_range(&TokenRange::FULL, 0, 0),
            Some(TokenRange::FULL)
        );
    }
}

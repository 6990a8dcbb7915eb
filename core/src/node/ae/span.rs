//! Spans: arcs of a range that repair walks, and the order both replicas walk them in.
//!
//! The order is (clockwise offset of the key's position from the start of an enclosing
//! arc, key bytes); repair uses the exchange's range as that arc ("range order"), and
//! for keys inside one span it equals the order from the span's own start. The
//! position index is keyed by `position BE ‖ key`, so scanning the spans in range
//! order, each by its pieces (below) in clockwise order, yields exactly that order; the
//! initiator's page, the responder's scan and every cursor comparison agree on it.

use std::cmp::Ordering;

use crate::antientropy::MerkleTree;
use crate::ring::{Position, TokenRange};

/// The span's positions as inclusive `(lo, hi)` pieces in clockwise order from its
/// start: one piece, or two when it wraps past `u64::MAX`. (`TokenRange::
/// to_inclusive_bounds` gives `(0, MAX)` for any full ring, which is not clockwise
/// from a start other than `MAX`.)
pub(crate) fn pieces(span: &TokenRange) -> Vec<(Position, Position)> {
    let start = span.start_exclusive;
    if span.is_full() && start != u64::MAX {
        return vec![(start + 1, u64::MAX), (0, start)];
    }
    span.to_inclusive_bounds()
}

/// Clockwise offset of `position` from the span's first position (`0..width` inside it).
fn offset(span: &TokenRange, position: Position) -> u64 {
    position.wrapping_sub(span.start_exclusive).wrapping_sub(1)
}

/// Order of two keys at known positions, both inside `arc`.
pub(crate) fn compare(arc: &TokenRange, a: (Position, &[u8]), b: (Position, &[u8])) -> Ordering {
    (offset(arc, a.0), a.1).cmp(&(offset(arc, b.0), b.1))
}

/// Order of two keys inside `arc`.
#[cfg(test)]
pub(crate) fn compare_keys(arc: &TokenRange, a: &[u8], b: &[u8]) -> Ordering {
    use crate::ring::key_position;
    compare(arc, (key_position(a), a), (key_position(b), b))
}

/// Whether `spans` are non-empty, each inside `range`, and disjoint in range order.
pub(crate) fn ascending_within(range: &TokenRange, spans: &[TokenRange]) -> bool {
    let mut previous_last: Option<u64> = None;
    for arc in spans {
        if !within(range, arc) {
            return false;
        }
        let first = offset(range, arc.start_exclusive.wrapping_add(1));
        if previous_last.is_some_and(|last| first <= last) {
            return false;
        }
        previous_last = Some(offset(range, arc.end_inclusive));
    }
    !spans.is_empty()
}

/// Whether every position of `inner` lies in `outer`.
pub(crate) fn within(outer: &TokenRange, inner: &TokenRange) -> bool {
    // Offsets relative to outer's first position; u128 because a full ring is 2^64 wide.
    let first = u128::from(offset(outer, inner.start_exclusive.wrapping_add(1)));
    first + inner.width_positions() <= outer.width_positions()
}

/// The arcs covered by `buckets` (ascending leaf indices of `tree`), adjacent buckets
/// merged: one span per run of consecutive differing buckets, so a replica that lacks a
/// whole range costs pages in proportion to its keys, not to its bucket count. Empty
/// buckets (ranges narrower than the leaf count) are skipped; they cannot differ.
pub(crate) fn of_buckets(tree: &MerkleTree, buckets: &[u64]) -> Vec<TokenRange> {
    let mut spans: Vec<TokenRange> = Vec::new();
    for bucket in buckets {
        let Some(arc) = tree.bucket_key_range(*bucket) else {
            continue;
        };
        match spans.last_mut() {
            // Buckets tile the range in order, so a run's arcs are contiguous; their union
            // stays inside the range (it is the whole ring only if the range is).
            Some(last) if last.end_inclusive == arc.start_exclusive && !last.is_full() => {
                last.end_inclusive = arc.end_inclusive;
            }
            _ => spans.push(arc),
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_run_clockwise_and_within_checks_containment() {
        assert_eq!(pieces(&TokenRange::new(10, 20)), vec![(11, 20)]);
        assert_eq!(
            pieces(&TokenRange::new(u64::MAX - 1, 3)),
            vec![(u64::MAX, u64::MAX), (0, 3)]
        );
        assert_eq!(pieces(&TokenRange::new(5, 5)), vec![(6, u64::MAX), (0, 5)]);
        assert_eq!(
            pieces(&TokenRange::new(u64::MAX, u64::MAX)),
            vec![(0, u64::MAX)]
        );
        let outer = TokenRange::new(u64::MAX - 10, 10);
        assert!(within(&outer, &TokenRange::new(u64::MAX - 10, 10)));
        assert!(within(&outer, &TokenRange::new(u64::MAX - 3, 2)));
        assert!(within(&outer, &TokenRange::new(0, 10)));
        assert!(!within(&outer, &TokenRange::new(0, 11)));
        assert!(!within(&outer, &TokenRange::new(u64::MAX - 11, 0)));
        assert!(!within(&outer, &TokenRange::new(20, 30)));
        assert!(!within(&outer, &TokenRange::FULL));
        assert!(within(&TokenRange::new(4, 4), &TokenRange::new(4, 4)));
        assert!(!within(&TokenRange::new(4, 4), &TokenRange::new(5, 5)));
        assert!(within(&TokenRange::new(4, 4), &TokenRange::new(9, 2)));
        // Order: by offset from the span start, so a wrapped position sorts last.
        let span = TokenRange::new(u64::MAX - 1, 3);
        assert_eq!(
            compare(&span, (0, b"a"), (u64::MAX, b"b")),
            Ordering::Greater
        );
        assert_eq!(compare(&span, (1, b"a"), (1, b"b")), Ordering::Less);
        // Span lists: inside the range, disjoint, ascending from the range's start.
        let range = TokenRange::new(u64::MAX - 10, 10);
        let a = TokenRange::new(u64::MAX - 10, u64::MAX - 5);
        let b = TokenRange::new(u64::MAX - 5, 2);
        let c = TokenRange::new(4, 10);
        assert!(ascending_within(&range, &[a, b, c]));
        assert!(ascending_within(&range, &[a, c]));
        assert!(!ascending_within(&range, &[b, a]));
        assert!(!ascending_within(&range, &[a, a]));
        assert!(!ascending_within(
            &range,
            &[a, TokenRange::new(u64::MAX - 6, 0)]
        ));
        assert!(!ascending_within(&range, &[c, TokenRange::new(10, 11)]));
        assert!(!ascending_within(&range, &[]));
    }

    #[test]
    fn adjacent_buckets_merge_into_one_span() {
        let range = TokenRange::new(1000, 1000 + 1600);
        let tree = MerkleTree::new(range, 4).expect("tree");
        let spans = of_buckets(&tree, &[0, 1, 2, 5, 15]);
        assert_eq!(
            spans,
            vec![
                TokenRange::new(1000, 1300),
                TokenRange::new(1500, 1600),
                TokenRange::new(2500, 2600)
            ]
        );
        let all: Vec<u64> = (0..16).collect();
        assert_eq!(of_buckets(&tree, &all), vec![range]);
        let full = MerkleTree::new(TokenRange::new(7, 7), 3).expect("tree");
        let all: Vec<u64> = (0..8).collect();
        assert_eq!(of_buckets(&full, &all), vec![TokenRange::new(7, 7)]);
    }
}

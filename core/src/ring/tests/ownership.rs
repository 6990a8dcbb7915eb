use std::collections::BTreeSet;

use super::super::balance::sample_key;
use super::super::{
    key_position, ranges_moved, NodeId, NodeSpec, RingLayout, TokenRange, RING_SIZE_POSITIONS,
};
use super::{equal_layout, layout_of};

/// Checks that the nodes' `primary_ranges` cover the ring exactly `copies` times: each
/// node's ranges are disjoint, widths add up, and sampled points agree with
/// `owners_at`.
pub(super) fn assert_ranges_cover(layout: &RingLayout, copies: u128) {
    let mut total: u128 = 0;
    for node in layout.nodes().keys() {
        let ranges = layout.primary_ranges(*node);
        let width: u128 = ranges.iter().map(TokenRange::width_positions).sum();
        assert!(width <= RING_SIZE_POSITIONS, "node {node}'s ranges overlap");
        total += width;
        for range in &ranges {
            assert!(layout.owners_at(range.end_inclusive).contains(node));
            assert!(layout
                .owners_at(range.start_exclusive.wrapping_add(1))
                .contains(node));
        }
    }
    assert_eq!(total, copies * RING_SIZE_POSITIONS);
    let probes = layout
        .tokens()
        .iter()
        .flat_map(|(t, _)| [*t, t.wrapping_add(1), t.wrapping_sub(1)]);
    for position in probes.take(3_000).chain([0, u64::MAX]) {
        let holders: BTreeSet<NodeId> = layout
            .nodes()
            .keys()
            .filter(|node| {
                layout
                    .primary_ranges(**node)
                    .iter()
                    .any(|r| r.contains(position))
            })
            .copied()
            .collect();
        let owners: BTreeSet<NodeId> = layout.owners_at(position).into_iter().collect();
        assert_eq!(holders, owners, "at {position}");
    }
}

#[test]
fn primary_ranges_cover_the_ring_n_times() {
    let small = RingLayout::from_parts(
        0,
        3,
        8,
        (1..=5).map(|id| NodeSpec::new(id, format!("z{id}"), 1)),
    )
    .expect("valid");
    assert_ranges_cover(&small, 3);
    let zoned = RingLayout::from_parts(
        0,
        3,
        16,
        (1..=7).map(|id| NodeSpec::new(id, format!("z{}", id % 3), 1 + id as u32 % 2)),
    )
    .expect("valid");
    assert_ranges_cover(&zoned, 3);
    assert_ranges_cover(&equal_layout(2), 2);
}

#[test]
fn exactly_one_range_wraps_per_node_at_most() {
    let layout = equal_layout(5);
    for node in layout.nodes().keys() {
        let ranges = layout.primary_ranges(*node);
        assert!(ranges.iter().filter(|range| range.wraps()).count() <= 1);
        // Clockwise order from position 0, ranges never touching (they'd be coalesced).
        for pair in ranges.windows(2) {
            assert!(pair[0].end_inclusive < pair[1].start_exclusive);
        }
    }
    let segments = layout.segments();
    assert_eq!(
        segments.iter().filter(|(range, _)| range.wraps()).count(),
        1
    );
    let width: u128 = segments
        .iter()
        .map(|(range, _)| range.width_positions())
        .sum();
    assert_eq!(width, RING_SIZE_POSITIONS);
}

#[test]
fn owners_of_range_splits_where_owners_change() {
    let layout = equal_layout(5);
    let tokens = layout.tokens();
    // A range spanning position 0 and several tokens on each side.
    let range = TokenRange::new(tokens[tokens.len() - 4].0 - 1, tokens[3].0 + 1);
    let pieces = layout.owners_of_range(&range);
    assert_eq!(pieces[0].0.start_exclusive, range.start_exclusive);
    assert_eq!(
        pieces[pieces.len() - 1].0.end_inclusive,
        range.end_inclusive
    );
    for pair in pieces.windows(2) {
        assert_eq!(pair[0].0.end_inclusive, pair[1].0.start_exclusive);
        assert_ne!(pair[0].1, pair[1].1);
    }
    for (piece, owners) in &pieces {
        assert_eq!(&layout.owners_at(piece.end_inclusive), owners);
        assert_eq!(
            &layout.owners_at(piece.start_exclusive.wrapping_add(1)),
            owners
        );
    }
    let width: u128 = pieces
        .iter()
        .map(|(piece, _)| piece.width_positions())
        .sum();
    assert_eq!(width, range.width_positions());
    assert_eq!(layout.owners_of_range(&TokenRange::FULL), layout.segments());
    assert_eq!(
        RingLayout::new(3).owners_of_range(&range),
        vec![(range, vec![])]
    );
}

#[test]
fn ranges_moved_on_join_all_gain_the_new_node() {
    let old = equal_layout(5);
    let new = old.with_node(NodeSpec::new(6, "zone-6", 1)).expect("valid");
    let moved = ranges_moved(&old, &new);
    assert!(!moved.is_empty());
    for (_, old_owners, new_owners) in &moved {
        assert!(new_owners.contains(&NodeId(6)) && !old_owners.contains(&NodeId(6)));
        assert_eq!(
            new_owners
                .iter()
                .filter(|node| !old_owners.contains(node))
                .count(),
            1
        );
    }
    // The new node's ranges are exactly the moved ranges.
    let moved_width: u128 = moved
        .iter()
        .map(|(range, _, _)| range.width_positions())
        .sum();
    let new_width: u128 = new
        .primary_ranges(NodeId(6))
        .iter()
        .map(TokenRange::width_positions)
        .sum();
    assert_eq!(moved_width, new_width);
    // Sample keys: a key's replica set changed iff it lies in a moved range.
    for index in 0..2_000 {
        let key = sample_key(index);
        let changed = old.preference_list(&key).iter().collect::<BTreeSet<_>>()
            != new.preference_list(&key).iter().collect::<BTreeSet<_>>();
        let in_moved = moved
            .iter()
            .any(|(range, _, _)| range.contains(key_position(&key)));
        assert_eq!(changed, in_moved, "key {index}");
    }
}

#[test]
fn ranges_moved_handles_empty_and_equal_layouts() {
    let layout = equal_layout(3);
    assert!(ranges_moved(&layout, &layout).is_empty());
    let from_empty = ranges_moved(&RingLayout::new(3), &layout);
    let width: u128 = from_empty
        .iter()
        .map(|(range, _, _)| range.width_positions())
        .sum();
    assert_eq!(width, RING_SIZE_POSITIONS);
    assert!(ranges_moved(&RingLayout::new(3), &RingLayout::new(3)).is_empty());
    let to_empty = ranges_moved(&layout, &RingLayout::new(3));
    assert!(to_empty
        .iter()
        .all(|(_, _, new_owners)| new_owners.is_empty()));
    // One node: the full ring, as one range.
    let single = layout_of([NodeSpec::new(1, "a", 1)]);
    let moved = ranges_moved(&RingLayout::new(3), &single);
    assert_eq!(moved.len(), 1);
    assert!(moved[0].0.is_full());
}

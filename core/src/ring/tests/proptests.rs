//! Invariants over random layouts (small vnode counts keep each case fast).

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::super::{key_position, ranges_moved, NodeId, NodeSpec, RingLayout};
use super::ownership::assert_ranges_cover;

fn arb_specs() -> impl Strategy<Value = Vec<NodeSpec>> {
    prop::collection::btree_map(any::<u64>(), (0u8..4, 0u32..4), 0..8).prop_map(|nodes| {
        nodes
            .into_iter()
            .map(|(id, (zone, capacity))| NodeSpec::new(id, format!("z{zone}"), capacity))
            .collect()
    })
}

fn build(specs: &[NodeSpec], replicas: usize, vnodes: u32) -> RingLayout {
    RingLayout::from_parts(0, replicas, vnodes, specs.iter().cloned()).expect("within limits")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn preference_lists_are_well_formed(
        specs in arb_specs(), replicas in 1usize..5, vnodes in 1u32..12, keys in prop::collection::vec(any::<u64>(), 32),
    ) {
        let layout = build(&specs, replicas, vnodes);
        let holders = layout.token_holder_count();
        for position in keys {
            let owners = layout.owners_at(position);
            prop_assert_eq!(owners.len(), replicas.min(holders));
            prop_assert_eq!(owners.iter().collect::<BTreeSet<_>>().len(), owners.len());
            let zones: BTreeSet<&str> =
                owners.iter().filter_map(|node| layout.node(*node)).map(|spec| spec.zone.as_str()).collect();
            prop_assert_eq!(zones.len(), owners.len().min(layout.zone_count()));
            for node in &owners {
                prop_assert!(layout.node(*node).is_some_and(|spec| spec.capacity > 0));
            }
        }
    }

    #[test]
    fn ranges_cover_the_ring_n_times(specs in arb_specs(), replicas in 1usize..5, vnodes in 1u32..6) {
        let layout = build(&specs, replicas, vnodes);
        assert_ranges_cover(&layout, replicas.min(layout.token_holder_count()) as u128);
    }

    #[test]
    fn insertion_order_does_not_matter(specs in arb_specs(), replicas in 1usize..5, key in any::<Vec<u8>>()) {
        let forward = build(&specs, replicas, 8);
        let mut reversed_specs = specs.clone();
        reversed_specs.reverse();
        let mut incremental = RingLayout::from_parts(0, replicas, 8, []).expect("valid");
        for spec in reversed_specs {
            incremental = incremental.with_node(spec).expect("valid");
        }
        prop_assert_eq!(forward.tokens(), incremental.tokens());
        prop_assert_eq!(forward.preference_list(&key), incremental.preference_list(&key));
    }

    #[test]
    fn ranges_moved_matches_pointwise_owners(
        before in arb_specs(), after in arb_specs(), replicas in 1usize..4, positions in prop::collection::vec(any::<u64>(), 32),
    ) {
        let (old, new) = (build(&before, replicas, 4), build(&after, replicas, 4));
        let moved = ranges_moved(&old, &new);
        let probes = positions.into_iter().chain(old.tokens().iter().chain(new.tokens()).map(|(p, _)| *p));
        for position in probes {
            let set = |layout: &RingLayout| layout.owners_at(position).into_iter().collect::<BTreeSet<NodeId>>();
            let changed = set(&old) != set(&new);
            let hits: Vec<_> = moved.iter().filter(|(range, _, _)| range.contains(position)).collect();
            prop_assert!(hits.len() <= 1);
            prop_assert_eq!(changed, hits.len() == 1);
            if let Some((_, old_owners, new_owners)) = hits.first() {
                prop_assert_eq!(old_owners, &old.owners_at(position));
                prop_assert_eq!(new_owners, &new.owners_at(position));
            }
        }
    }

    #[test]
    fn key_positions_are_total(key in any::<Vec<u8>>()) {
        // No panic, and deterministic.
        prop_assert_eq!(key_position(&key), key_position(&key));
    }
}

//! Invariants over random layouts (small vnode counts keep each case fast).

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::super::{
    key_position, ranges_moved, Domain, NodeId, NodeSpec, Position, ProcessId, RingLayout,
};
use super::ownership::assert_ranges_cover;

fn arb_specs() -> impl Strategy<Value = Vec<NodeSpec>> {
    prop::collection::btree_map(any::<u64>(), (0u8..4, 0u32..4), 0..8).prop_map(|nodes| {
        nodes
            .into_iter()
            .map(|(id, (zone, capacity))| NodeSpec::new(id, format!("z{zone}"), capacity))
            .collect()
    })
}

/// Members in processes of any size: each member names one of 5 processes or none (its
/// own), and a process's members share the zone drawn for that process (the layout
/// refuses anything else).
fn arb_sharded_specs() -> impl Strategy<Value = Vec<NodeSpec>> {
    let member = (0u8..4, 0u32..4, 0u64..6);
    (
        prop::collection::btree_map(any::<u64>(), member, 0..12),
        prop::collection::vec(0u8..4, 5),
    )
        .prop_map(|(nodes, process_zones)| {
            nodes
                .into_iter()
                .map(|(id, (zone, capacity, process))| match process {
                    0 => NodeSpec::new(id, format!("z{zone}"), capacity),
                    p => NodeSpec::new(id, format!("z{}", process_zones[p as usize - 1]), capacity)
                        .in_process(ProcessId(p)),
                })
                .collect()
        })
}

/// The walk of builds before processes (`RingLayout::owners_at` at `2417f35`), kept
/// verbatim as the reference: a layout whose members are each their own process must
/// place every key exactly as it did, or data would move on upgrade.
fn owners_before_processes(layout: &RingLayout, position: Position) -> Vec<NodeId> {
    let tokens = layout.tokens();
    let start = tokens.partition_point(|(token, _)| *token < position);
    let wanted = layout.replicas().min(layout.token_holder_count());
    let zones_wanted = wanted.min(layout.zone_count());
    let mut picked: Vec<NodeId> = Vec::with_capacity(wanted);
    let mut picked_zones: Vec<&str> = Vec::with_capacity(zones_wanted);
    let mut skipped: Vec<NodeId> = Vec::new();
    if tokens.is_empty() || wanted == 0 {
        return picked;
    }
    for step in 0..tokens.len() {
        let (_, node) = tokens[(start + step) % tokens.len()];
        if picked.contains(&node) || skipped.contains(&node) {
            continue;
        }
        let Some(spec) = layout.node(node) else {
            continue;
        };
        let zone = spec.zone.as_str();
        if picked_zones.len() < zones_wanted && !picked_zones.contains(&zone) {
            picked.push(node);
            picked_zones.push(zone);
        } else {
            skipped.push(node);
        }
        if picked_zones.len() == zones_wanted && picked.len() + skipped.len() >= wanted {
            break;
        }
    }
    let fillers = wanted.saturating_sub(picked.len());
    picked.extend(skipped.into_iter().take(fillers));
    picked
}

fn build(specs: &[NodeSpec], replicas: usize, vnodes: u32) -> RingLayout {
    RingLayout::from_parts(0, replicas, vnodes, specs.iter().cloned()).expect("within limits")
}

/// `ranges_moved(old, new)` names exactly the positions whose owner set changed, each in
/// one range, with the old and new owners there.
fn check_ranges_moved(
    before: &[NodeSpec],
    after: &[NodeSpec],
    replicas: usize,
    positions: Vec<u64>,
) -> Result<(), TestCaseError> {
    let (old, new) = (build(before, replicas, 4), build(after, replicas, 4));
    let moved = ranges_moved(&old, &new);
    let tokens = old.tokens().iter().chain(new.tokens()).map(|(p, _)| *p);
    for position in positions.into_iter().chain(tokens) {
        let set = |layout: &RingLayout| {
            layout
                .owners_at(position)
                .into_iter()
                .collect::<BTreeSet<NodeId>>()
        };
        let changed = set(&old) != set(&new);
        let hits: Vec<_> = moved
            .iter()
            .filter(|(range, _, _)| range.contains(position))
            .collect();
        prop_assert!(hits.len() <= 1);
        prop_assert_eq!(changed, hits.len() == 1);
        if let Some((_, old_owners, new_owners)) = hits.first() {
            prop_assert_eq!(old_owners, &old.owners_at(position));
            prop_assert_eq!(new_owners, &new.owners_at(position));
        }
    }
    Ok(())
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
        check_ranges_moved(&before, &after, replicas, positions)?;
    }

    #[test]
    fn layouts_without_processes_place_as_before(
        specs in arb_specs(), replicas in 1usize..6, vnodes in 1u32..12, keys in prop::collection::vec(any::<u64>(), 32),
    ) {
        let layout = build(&specs, replicas, vnodes);
        let probes = keys.into_iter().chain(layout.tokens().iter().map(|(p, _)| *p));
        for position in probes {
            prop_assert_eq!(layout.owners_at(position), owners_before_processes(&layout, position));
        }
    }

    /// The shard layout's rule: every key's replicas are in distinct processes, as many
    /// as N allows and token-holding processes exist, in as many zones as exist.
    #[test]
    fn replicas_never_share_a_process(
        specs in arb_sharded_specs(), replicas in 1usize..5, vnodes in 1u32..12, keys in prop::collection::vec(any::<u64>(), 32),
    ) {
        let layout = build(&specs, replicas, vnodes);
        let holders: Vec<&NodeSpec> = specs.iter().filter(|spec| spec.capacity > 0).collect();
        let processes: BTreeSet<Domain> = holders.iter().map(|spec| spec.domain()).collect();
        let zones: BTreeSet<&str> = holders.iter().map(|spec| spec.zone.as_str()).collect();
        prop_assert_eq!(layout.domain_count(), processes.len());
        let probes = keys.into_iter().chain(layout.tokens().iter().map(|(p, _)| *p));
        for position in probes {
            let owners = layout.owners_at(position);
            let specs: Vec<&NodeSpec> = owners.iter().filter_map(|node| layout.node(*node)).collect();
            prop_assert_eq!(specs.len(), owners.len());
            prop_assert_eq!(owners.len(), replicas.min(processes.len()));
            let owner_processes: BTreeSet<Domain> = specs.iter().map(|spec| spec.domain()).collect();
            prop_assert_eq!(owner_processes.len(), owners.len(), "two replicas in one process: {:?}", specs);
            let owner_zones: BTreeSet<&str> = specs.iter().map(|spec| spec.zone.as_str()).collect();
            prop_assert_eq!(owner_zones.len(), owners.len().min(zones.len()));
            prop_assert!(specs.iter().all(|spec| spec.capacity > 0));
        }
    }

    #[test]
    fn sharded_ranges_cover_the_ring_once_per_replica(specs in arb_sharded_specs(), replicas in 1usize..5, vnodes in 1u32..6) {
        let layout = build(&specs, replicas, vnodes);
        assert_ranges_cover(&layout, layout.replicas_per_key() as u128);
    }

    #[test]
    fn sharded_ranges_moved_matches_pointwise_owners(
        before in arb_sharded_specs(), after in arb_sharded_specs(), replicas in 1usize..4, positions in prop::collection::vec(any::<u64>(), 32),
    ) {
        check_ranges_moved(&before, &after, replicas, positions)?;
    }

    #[test]
    fn key_positions_are_total(key in any::<Vec<u8>>()) {
        // No panic, and deterministic.
        prop_assert_eq!(key_position(&key), key_position(&key));
    }
}

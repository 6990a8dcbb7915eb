use std::collections::BTreeSet;

use super::super::balance::sample_key;
use super::super::{key_position, Domain, LayoutError, NodeId, NodeSpec, ProcessId, RingLayout};
use super::{equal_layout, layout_of};

fn zones_of(layout: &RingLayout, owners: &[NodeId]) -> BTreeSet<String> {
    owners
        .iter()
        .filter_map(|node| layout.node(*node))
        .map(|spec| spec.zone.clone())
        .collect()
}

#[test]
fn lists_hold_n_distinct_nodes() {
    let layout = equal_layout(5);
    for index in 0..2_000 {
        let owners = layout.preference_list(&sample_key(index));
        assert_eq!(owners.len(), 3);
        assert_eq!(
            owners.iter().collect::<BTreeSet<_>>().len(),
            3,
            "{owners:?}"
        );
    }
}

#[test]
fn fewer_nodes_than_replicas_gives_all_nodes() {
    assert!(RingLayout::new(3).preference_list(b"k").is_empty());
    let two = equal_layout(2);
    for index in 0..100 {
        let owners: BTreeSet<NodeId> = two
            .preference_list(&sample_key(index))
            .into_iter()
            .collect();
        assert_eq!(owners, BTreeSet::from([NodeId(1), NodeId(2)]));
    }
}

#[test]
fn replicas_spread_over_distinct_zones() {
    // 3 zones of 3 nodes: every key gets one replica per zone.
    let layout = layout_of((1..=9).map(|id| NodeSpec::new(id, format!("zone-{}", id % 3), 1)));
    for index in 0..2_000 {
        let owners = layout.preference_list(&sample_key(index));
        assert_eq!(owners.len(), 3);
        assert_eq!(zones_of(&layout, &owners).len(), 3, "{owners:?}");
    }
}

#[test]
fn a_lone_node_in_its_zone_holds_every_key() {
    // Zone "a" has one small node, zone "b" five big ones: zone spreading puts a replica
    // of every key in zone a, even though it holds few tokens.
    let mut specs = vec![NodeSpec::new(1, "a", 1)];
    specs.extend((2..=6).map(|id| NodeSpec::new(id, "b", 2)));
    let layout = layout_of(specs);
    for index in 0..1_000 {
        let owners = layout.preference_list(&sample_key(index));
        assert!(owners.contains(&NodeId(1)), "{owners:?}");
        assert_eq!(owners.len(), 3);
    }
}

#[test]
fn fewer_zones_than_replicas_uses_every_zone_then_fills() {
    let layout = layout_of((1..=6).map(|id| NodeSpec::new(id, format!("zone-{}", id % 2), 1)));
    for index in 0..1_000 {
        let owners = layout.preference_list(&sample_key(index));
        assert_eq!(owners.len(), 3);
        assert_eq!(owners.iter().collect::<BTreeSet<_>>().len(), 3);
        assert_eq!(
            zones_of(&layout, &owners[..2]).len(),
            2,
            "picks first: {owners:?}"
        );
    }
}

#[test]
fn primary_owns_the_successor_token_whatever_the_zones() {
    let layout = layout_of((1..=6).map(|id| NodeSpec::new(id, format!("zone-{}", id % 2), 1)));
    let tokens = layout.tokens();
    for index in 0..1_000 {
        let key = sample_key(index);
        let position = key_position(&key);
        let successor = tokens
            .iter()
            .find(|(token, _)| *token >= position)
            .unwrap_or(&tokens[0]);
        assert_eq!(layout.preference_list(&key)[0], successor.1);
    }
}

#[test]
fn positions_past_the_last_token_wrap_to_the_first() {
    let layout = equal_layout(5);
    let tokens = layout.tokens();
    let (first, last) = (tokens[0], tokens[tokens.len() - 1]);
    assert!(last.0 < u64::MAX, "pick ids whose last token is below MAX");
    assert_eq!(layout.owners_at(u64::MAX), layout.owners_at(0));
    assert_eq!(layout.owners_at(last.0 + 1), layout.owners_at(first.0));
    assert_eq!(layout.owners_at(last.0 + 1)[0], first.1);
    assert_eq!(layout.owners_at(last.0)[0], last.1);
}

#[test]
fn zero_capacity_members_hold_nothing() {
    let layout = equal_layout(4)
        .with_node(NodeSpec::new(9, "zone-9", 0))
        .expect("valid");
    assert!(layout.node(NodeId(9)).is_some());
    for index in 0..1_000 {
        assert!(!layout
            .preference_list(&sample_key(index))
            .contains(&NodeId(9)));
    }
    assert!(layout.primary_ranges(NodeId(9)).is_empty());
}

#[test]
fn single_node_single_zone_and_n_one() {
    let one = equal_layout(1);
    assert_eq!(one.preference_list(b"x"), vec![NodeId(1)]);
    assert_eq!(one.segments().len(), 1);
    assert!(one.segments()[0].0.is_full());
    let mut n1 = RingLayout::new(1);
    for id in 1..=4 {
        n1 = n1.with_node(NodeSpec::new(id, "same", 1)).expect("valid");
    }
    assert_eq!(n1.preference_list(b"x").len(), 1);
}

/// `count` processes of `shards` members each (ids `1..`), process `p` in zone `z{p}`.
fn sharded(count: u64, shards: u64) -> RingLayout {
    layout_of((0..count * shards).map(|i| {
        let process = i / shards;
        NodeSpec::new(i + 1, format!("z{process}"), 1).in_process(ProcessId(process))
    }))
}

fn processes_of(layout: &RingLayout, owners: &[NodeId]) -> BTreeSet<Domain> {
    owners
        .iter()
        .filter_map(|node| layout.node(*node))
        .map(NodeSpec::domain)
        .collect()
}

#[test]
fn replicas_go_to_distinct_processes() {
    let layout = sharded(4, 3);
    assert_eq!((layout.domain_count(), layout.replicas_per_key()), (4, 3));
    let mut primaries = BTreeSet::new();
    for index in 0..2_000 {
        let owners = layout.preference_list(&sample_key(index));
        assert_eq!(owners.len(), 3);
        assert_eq!(processes_of(&layout, &owners).len(), 3, "{owners:?}");
        primaries.insert(owners[0]);
    }
    // Every shard still leads some keys: a process's shards split its share.
    assert_eq!(primaries.len(), 12);
}

#[test]
fn fewer_processes_than_replicas_gives_one_shard_of_each() {
    // Two processes of three shards: N = 3 cannot be met without two replicas in one
    // process, so every key has 2 (as a 2-node layout has always had).
    let layout = sharded(2, 3);
    assert_eq!(layout.replicas_per_key(), 2);
    for index in 0..500 {
        let owners = layout.preference_list(&sample_key(index));
        assert_eq!(owners.len(), 2);
        assert_eq!(processes_of(&layout, &owners).len(), 2, "{owners:?}");
    }
    // One process: one replica, however many shards it runs.
    assert_eq!(sharded(1, 4).preference_list(b"k").len(), 1);
}

#[test]
fn a_process_never_spans_zones() {
    let layout = sharded(2, 2);
    let stray = NodeSpec::new(9, "elsewhere", 1).in_process(ProcessId(1));
    assert!(matches!(
        layout.with_node(stray),
        Err(LayoutError::ProcessSpansZones {
            process: ProcessId(1),
            ..
        })
    ));
    // The same zone is fine, and so is a member of its own process anywhere.
    assert!(layout
        .with_node(NodeSpec::new(9, "z1", 1).in_process(ProcessId(1)))
        .is_ok());
    assert!(layout.with_node(NodeSpec::new(9, "elsewhere", 1)).is_ok());
}

#[test]
fn process_ids_and_node_ids_do_not_collide() {
    // Member 1 alone and members of process 1 are distinct domains.
    let layout = layout_of([
        NodeSpec::new(1, "a", 1),
        NodeSpec::new(2, "b", 1).in_process(ProcessId(1)),
        NodeSpec::new(3, "b", 1).in_process(ProcessId(1)),
    ]);
    assert_eq!(layout.domain_count(), 2);
    for index in 0..200 {
        let owners = layout.preference_list(&sample_key(index));
        assert_eq!(owners.len(), 2);
        assert!(owners.contains(&NodeId(1)), "{owners:?}");
    }
}

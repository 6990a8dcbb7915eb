use super::super::balance::{load_balance, sample_key};
use super::super::layout::{TOKENS_PER_NODE_MAX, TOKENS_TOTAL_MAX};
use super::super::{LayoutError, NodeId, NodeSpec, RingLayout, DEFAULT_VNODES_PER_CAPACITY_UNIT};
use super::{equal_layout, layout_of};

#[test]
fn every_change_bumps_the_version_and_no_ops_do_not() {
    let base = equal_layout(3);
    assert_eq!(base.version(), 3);
    let same = base
        .with_node(NodeSpec::new(2, "zone-2", 1))
        .expect("valid");
    assert_eq!(same, base);
    let bigger = base
        .with_node(NodeSpec::new(2, "zone-2", 2))
        .expect("valid");
    assert_eq!(bigger.version(), 4);
    let moved = base
        .with_node(NodeSpec::new(2, "elsewhere", 1))
        .expect("valid");
    assert_eq!(moved.version(), 4);
    let smaller = base.without_node(NodeId(2)).expect("valid");
    assert_eq!(smaller.version(), 4);
    assert_eq!(base.without_node(NodeId(77)).expect("valid"), base);
}

#[test]
fn token_counts_follow_capacity() {
    let layout = layout_of([NodeSpec::new(1, "a", 1), NodeSpec::new(2, "b", 3)]);
    let count = |id| {
        layout
            .tokens()
            .iter()
            .filter(|(_, node)| *node == NodeId(id))
            .count()
    };
    let per_unit = DEFAULT_VNODES_PER_CAPACITY_UNIT as usize;
    assert_eq!((count(1), count(2)), (per_unit, 3 * per_unit));
    assert!(layout.tokens().windows(2).all(|pair| pair[0] <= pair[1]));
}

#[test]
fn ring_is_independent_of_insertion_order_and_path() {
    let forward = equal_layout(5);
    let backward = layout_of(
        (1..=5)
            .rev()
            .map(|id| NodeSpec::new(id, format!("zone-{id}"), 1)),
    );
    let via_removal = equal_layout(6).without_node(NodeId(6)).expect("valid");
    let from_parts = RingLayout::from_parts(
        5,
        3,
        DEFAULT_VNODES_PER_CAPACITY_UNIT,
        (1..=5).map(|id| NodeSpec::new(id, format!("zone-{id}"), 1)),
    )
    .expect("valid");
    // Same version and members: equal layouts, tokens included.
    assert_eq!(forward, backward);
    assert_eq!(forward, from_parts);
    // Different version (7), same members: same ring.
    assert_eq!(via_removal.tokens(), forward.tokens());
    for index in 0..1_000 {
        let key = sample_key(index);
        assert_eq!(
            forward.preference_list(&key),
            via_removal.preference_list(&key)
        );
    }
}

#[test]
fn growing_capacity_keeps_existing_tokens() {
    let small = equal_layout(3);
    let grown = small
        .with_node(NodeSpec::new(2, "zone-2", 2))
        .expect("valid");
    let tokens_of = |layout: &RingLayout| -> Vec<u64> {
        layout
            .tokens()
            .iter()
            .filter(|(_, node)| *node == NodeId(2))
            .map(|(p, _)| *p)
            .collect()
    };
    let before = tokens_of(&small);
    let after = tokens_of(&grown);
    assert!(before.iter().all(|token| after.contains(token)));
}

#[test]
fn double_capacity_gets_about_double_load() {
    // Three nodes of weight 1 and three of weight 2 (total 9 units): a weight-2 node's
    // share 2/9 stays below 1/N, so replicas can honour the weights.
    let layout = layout_of(
        (1..=6).map(|id| NodeSpec::new(id, format!("zone-{id}"), if id <= 3 { 1 } else { 2 })),
    );
    let report = load_balance(&layout, 60_000);
    let mean =
        |ids: [u64; 3], f: &dyn Fn(u64) -> f64| ids.iter().map(|id| f(*id)).sum::<f64>() / 3.0;
    let primary = |id| report.per_node[&NodeId(id)].primary_keys as f64;
    let replica = |id| report.per_node[&NodeId(id)].replica_keys as f64;
    let primary_ratio = mean([4, 5, 6], &primary) / mean([1, 2, 3], &primary);
    let replica_ratio = mean([4, 5, 6], &replica) / mean([1, 2, 3], &replica);
    assert!(
        (1.8..=2.2).contains(&primary_ratio),
        "primary ratio {primary_ratio}"
    );
    assert!(
        (1.6..=2.2).contains(&replica_ratio),
        "replica ratio {replica_ratio}"
    );
}

#[test]
fn limits_refuse_runaway_rings() {
    let too_big = u32::try_from(TOKENS_PER_NODE_MAX).unwrap_or(u32::MAX);
    let refused = RingLayout::new(3).with_node(NodeSpec::new(1, "a", too_big));
    assert!(matches!(refused, Err(LayoutError::TooManyTokens { .. })));
    let refused = RingLayout::new(3).with_node(NodeSpec::new(1, "a", u32::MAX));
    assert!(matches!(refused, Err(LayoutError::TooManyTokens { .. })));
    let per_node = TOKENS_PER_NODE_MAX / u64::from(DEFAULT_VNODES_PER_CAPACITY_UNIT);
    let nodes_needed = TOKENS_TOTAL_MAX / TOKENS_PER_NODE_MAX + 1;
    let specs = (0..nodes_needed).map(|id| NodeSpec::new(id, "a", per_node as u32));
    let refused = RingLayout::from_parts(0, 3, DEFAULT_VNODES_PER_CAPACITY_UNIT, specs);
    assert!(matches!(refused, Err(LayoutError::RingTooLarge { .. })));
    assert!(matches!(
        RingLayout::from_parts(0, 0, 8, []),
        Err(LayoutError::ReplicasOutOfRange(0))
    ));
    assert!(matches!(
        RingLayout::from_parts(0, 3, 0, []),
        Err(LayoutError::VnodesOutOfRange(0))
    ));
    let twice = [NodeSpec::new(1, "a", 1), NodeSpec::new(1, "b", 1)];
    assert!(matches!(
        RingLayout::from_parts(0, 3, 8, twice),
        Err(LayoutError::DuplicateNode(_))
    ));
    assert_eq!(RingLayout::new(0).replicas(), 1);
}

#[test]
fn version_counter_exhaustion_is_an_error() {
    let last = RingLayout::from_parts(u64::MAX, 3, 8, [NodeSpec::new(1, "a", 1)]).expect("valid");
    assert_eq!(
        last.with_node(NodeSpec::new(2, "b", 1)),
        Err(LayoutError::VersionExhausted)
    );
    assert_eq!(
        last.without_node(NodeId(1)),
        Err(LayoutError::VersionExhausted)
    );
}

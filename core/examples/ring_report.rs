//! Measures the ring against the issue's targets and prints the figures recorded in
//! `docs/ring.md`:
//!
//! ```text
//! cargo run --release -p ringkv-core --example ring_report
//! ```

use std::collections::BTreeMap;
use std::error::Error;

use ringkv_core::ring::balance::sample_key;
use ringkv_core::ring::{
    key_movement, key_position, load_balance, NodeId, NodeSpec, RingLayout,
    DEFAULT_VNODES_PER_CAPACITY_UNIT,
};

const SAMPLE_KEYS: usize = 100_000;

fn layout_of(specs: impl IntoIterator<Item = NodeSpec>) -> Result<RingLayout, Box<dyn Error>> {
    let mut layout = RingLayout::new(3);
    for spec in specs {
        layout = layout.with_node(spec)?;
    }
    Ok(layout)
}

fn equal_nodes(ids: &[u64]) -> Result<RingLayout, Box<dyn Error>> {
    layout_of(
        ids.iter()
            .map(|id| NodeSpec::new(*id, format!("zone-{id}"), 1)),
    )
}

fn print_loads(layout: &RingLayout) {
    let report = load_balance(layout, SAMPLE_KEYS);
    println!("  node  cap  primary  replicas  load/mean (per capacity unit)");
    for (node, load) in &report.per_node {
        println!(
            "  {node:>4} {:>4} {:>8} {:>9}  {:.4}",
            load.capacity, load.primary_keys, load.replica_keys, load.load_over_mean
        );
    }
    println!(
        "  max/mean {:.4}  min/mean {:.4}",
        report.max_over_mean, report.min_over_mean
    );
}

fn print_movement(label: &str, old: &RingLayout, new: &RingLayout) {
    let m = key_movement(old, new, SAMPLE_KEYS);
    println!("{label}:");
    println!(
        "  primary moved      {:.4}  ideal {:.4}  ratio {:.3}",
        m.primary_moved_fraction,
        m.primary_ideal_fraction,
        m.primary_moved_fraction / m.primary_ideal_fraction
    );
    println!(
        "  placements moved   {:.4}  ideal {:.4}  ratio {:.3}",
        m.placements_moved_fraction,
        m.placements_ideal_fraction,
        m.placements_moved_fraction / m.placements_ideal_fraction
    );
    println!(
        "  replica set changed {:.4} ideal {:.4}  ratio {:.3}",
        m.replica_set_changed_fraction,
        m.replica_set_ideal_fraction,
        m.replica_set_changed_fraction / m.replica_set_ideal_fraction
    );
}

/// Exact share of the ring (primary + replicas) per node, from arc widths.
fn exact_max_over_mean(layout: &RingLayout) -> f64 {
    let mut shares: BTreeMap<NodeId, f64> = BTreeMap::new();
    for (range, owners) in layout.segments() {
        for node in owners {
            *shares.entry(node).or_default() += range.fraction_of_ring();
        }
    }
    let mean = shares.values().sum::<f64>() / shares.len().max(1) as f64;
    shares
        .values()
        .fold(0.0, |max: f64, share| max.max(share / mean))
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted.get(index).copied().unwrap_or(f64::NAN)
}

fn main() -> Result<(), Box<dyn Error>> {
    println!("ring report: N=3, {DEFAULT_VNODES_PER_CAPACITY_UNIT} vnodes per capacity unit, {SAMPLE_KEYS} sample keys\n");

    let five = equal_nodes(&[1, 2, 3, 4, 5])?;
    println!("5 equal nodes (ids 1..=5):");
    print_loads(&five);

    let six = five.with_node(NodeSpec::new(6, "zone-6", 1))?;
    print_movement("\njoin: 6th node joins 5", &five, &six);
    print_movement("\nleave: node 6 leaves 6", &six, &five);
    print_movement(
        "\nleave: node 3 leaves 5",
        &five,
        &five.without_node(NodeId(3))?,
    );

    println!("\nweighted: nodes 1-3 capacity 1, nodes 4-6 capacity 2:");
    let weighted = layout_of(
        (1..=6).map(|id| NodeSpec::new(id, format!("zone-{id}"), if id <= 3 { 1 } else { 2 })),
    )?;
    print_loads(&weighted);
    let report = load_balance(&weighted, SAMPLE_KEYS);
    let mean = |ids: &[u64], f: &dyn Fn(u64) -> f64| {
        ids.iter().map(|id| f(*id)).sum::<f64>() / ids.len() as f64
    };
    let primary = |id| {
        report
            .per_node
            .get(&NodeId(id))
            .map_or(0.0, |load| load.primary_keys as f64)
    };
    let replica = |id| {
        report
            .per_node
            .get(&NodeId(id))
            .map_or(0.0, |load| load.replica_keys as f64)
    };
    println!(
        "  capacity-2 / capacity-1 load: primary {:.3}x, all replicas {:.3}x",
        mean(&[4, 5, 6], &primary) / mean(&[1, 2, 3], &primary),
        mean(&[4, 5, 6], &replica) / mean(&[1, 2, 3], &replica)
    );

    println!("\nzones: 9 nodes, 3 per zone (a, b, c), N=3:");
    let zoned =
        layout_of((1..=9).map(|id| NodeSpec::new(id, ["a", "b", "c"][(id % 3) as usize], 1)))?;
    let mut spread = 0usize;
    let mut per_zone: BTreeMap<String, u64> = BTreeMap::new();
    for index in 0..SAMPLE_KEYS {
        let owners = zoned.preference_list(&sample_key(index));
        let mut zones: Vec<String> = owners
            .iter()
            .filter_map(|node| zoned.node(*node))
            .map(|spec| spec.zone.clone())
            .collect();
        for zone in &zones {
            *per_zone.entry(zone.clone()).or_default() += 1;
        }
        zones.sort();
        zones.dedup();
        spread += usize::from(zones.len() == 3);
    }
    println!("  keys with replicas in 3 distinct zones: {spread}/{SAMPLE_KEYS}");
    println!("  replicas per zone: {per_zone:?}");
    print_loads(&zoned);

    let trials = 200;
    println!("\nrobustness: {trials} clusters with pseudo-random node ids (exact arc shares):");
    for node_count in [5u64, 10, 20] {
        let (mut balance, mut join) = (Vec::new(), Vec::new());
        for trial in 0..trials {
            let ids: Vec<u64> = (0..=node_count)
                .map(|i| key_position(format!("trial-{trial}-node-{i}").as_bytes()))
                .collect();
            let (members, joiner) = ids.split_at(node_count as usize);
            let before = equal_nodes(members)?;
            let after = equal_nodes(&ids)?;
            balance.push(exact_max_over_mean(&before));
            let joined_share: f64 = after
                .segments()
                .iter()
                .filter(|(_, owners)| {
                    owners.first() == joiner.first().map(|id| NodeId(*id)).as_ref()
                })
                .map(|(range, _)| range.fraction_of_ring())
                .sum();
            join.push(joined_share * (node_count + 1) as f64);
        }
        balance.sort_by(f64::total_cmp);
        join.sort_by(f64::total_cmp);
        println!(
            "  {node_count:>2} nodes: max/mean p50 {:.4} p95 {:.4} max {:.4} (> 1.10 in {}); join moved/ideal p50 {:.3} p95 {:.3} max {:.3} (> 1.2 in {})",
            percentile(&balance, 0.5),
            percentile(&balance, 0.95),
            percentile(&balance, 1.0),
            balance.iter().filter(|x| **x > 1.10).count(),
            percentile(&join, 0.5),
            percentile(&join, 0.95),
            percentile(&join, 1.0),
            join.iter().filter(|x| **x > 1.2).count(),
        );
    }
    Ok(())
}

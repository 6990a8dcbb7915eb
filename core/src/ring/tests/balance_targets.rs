//! The acceptance targets, as tests. Figures are printed (`--nocapture`) and
//! recorded in `docs/ring.md`.

use super::super::balance::{key_movement, keys_moved_fraction, load_balance};
use super::super::{NodeId, NodeSpec};
use super::equal_layout;

const SAMPLE_KEYS: usize = 100_000;

#[test]
fn five_equal_nodes_are_within_ten_percent_of_the_mean() {
    let report = load_balance(&equal_layout(5), SAMPLE_KEYS);
    println!(
        "5 nodes: max/mean {:.4} min/mean {:.4}",
        report.max_over_mean, report.min_over_mean
    );
    assert!(report.max_over_mean <= 1.10, "{report:?}");
    assert!(report.min_over_mean >= 0.90, "{report:?}");
    let placements: u64 = report.per_node.values().map(|load| load.replica_keys).sum();
    assert_eq!(placements, 3 * SAMPLE_KEYS as u64);
}

#[test]
fn a_sixth_node_joining_moves_at_most_1_2x_the_ideal() {
    let old = equal_layout(5);
    let new = old.with_node(NodeSpec::new(6, "zone-6", 1)).expect("valid");
    let movement = key_movement(&old, &new, SAMPLE_KEYS);
    println!("join: {movement:?}");
    assert!((movement.primary_ideal_fraction - 1.0 / 6.0).abs() < 1e-9);
    assert!((movement.replica_set_ideal_fraction - 0.5).abs() < 1e-9);
    assert!(movement.primary_moved_fraction <= 1.2 * movement.primary_ideal_fraction);
    assert!(movement.placements_moved_fraction <= 1.2 * movement.placements_ideal_fraction);
    assert!(movement.replica_set_changed_fraction <= 1.2 * movement.replica_set_ideal_fraction);
    let (moved, ideal) = keys_moved_fraction(&old, &new, SAMPLE_KEYS);
    assert_eq!(
        (moved, ideal),
        (
            movement.primary_moved_fraction,
            movement.primary_ideal_fraction
        )
    );
}

#[test]
fn a_node_leaving_six_moves_at_most_1_2x_the_ideal() {
    let old = equal_layout(6);
    let new = old.without_node(NodeId(6)).expect("valid");
    let movement = key_movement(&old, &new, SAMPLE_KEYS);
    println!("leave: {movement:?}");
    assert!((movement.primary_ideal_fraction - 1.0 / 6.0).abs() < 1e-9);
    assert!(movement.primary_moved_fraction <= 1.2 * movement.primary_ideal_fraction);
    assert!(movement.placements_moved_fraction <= 1.2 * movement.placements_ideal_fraction);
    assert!(movement.replica_set_changed_fraction <= 1.2 * movement.replica_set_ideal_fraction);
}

//! Measuring a layout: how evenly it spreads keys, and how many keys a change moves.
//!
//! Both functions place a deterministic sample of keys (`key-0`, `key-1`, ...), so
//! their results are exact, repeatable numbers that tests can hold to thresholds.

use std::collections::BTreeMap;

use super::layout::RingLayout;
use super::node::NodeId;

/// The `index`-th sample key.
pub fn sample_key(index: usize) -> Vec<u8> {
    format!("key-{index}").into_bytes()
}

/// One node's share of the sample.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeLoad {
    pub capacity: u32,
    /// Sample keys whose first replica is this node.
    pub primary_keys: u64,
    /// Sample keys with any replica (primary included) on this node: its storage load.
    pub replica_keys: u64,
    /// `replica_keys / capacity` divided by the mean of that over all nodes with
    /// capacity: 1.0 is a fair share for the node's weight.
    pub load_over_mean: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BalanceReport {
    pub sample_keys: usize,
    /// Largest and smallest `load_over_mean` among nodes with capacity > 0 (0.0 when
    /// there are none).
    pub max_over_mean: f64,
    pub min_over_mean: f64,
    pub per_node: BTreeMap<NodeId, NodeLoad>,
}

/// Load per node, counting every replica placement (primary + other replicas) of the
/// sample, normalized by capacity.
///
/// A node cannot hold two replicas of one key, so a node whose capacity share exceeds
/// `1/N` saturates at "every key" and reads below 1.0 here: weights are only honoured up
/// to that point.
pub fn load_balance(layout: &RingLayout, sample_keys: usize) -> BalanceReport {
    let mut per_node: BTreeMap<NodeId, NodeLoad> = layout
        .nodes()
        .values()
        .map(|spec| {
            let load = NodeLoad {
                capacity: spec.capacity,
                primary_keys: 0,
                replica_keys: 0,
                load_over_mean: 0.0,
            };
            (spec.id, load)
        })
        .collect();
    for index in 0..sample_keys {
        let owners = layout.preference_list(&sample_key(index));
        for (rank, node) in owners.iter().enumerate() {
            if let Some(load) = per_node.get_mut(node) {
                load.replica_keys += 1;
                if rank == 0 {
                    load.primary_keys += 1;
                }
            }
        }
    }
    let total_capacity: f64 = per_node.values().map(|load| f64::from(load.capacity)).sum();
    let total_placements: f64 = per_node.values().map(|load| load.replica_keys as f64).sum();
    let mean_per_unit = if total_capacity > 0.0 {
        total_placements / total_capacity
    } else {
        0.0
    };
    let (mut max_over_mean, mut min_over_mean) = (f64::MIN, f64::MAX);
    for load in per_node.values_mut().filter(|load| load.capacity > 0) {
        let per_unit = load.replica_keys as f64 / f64::from(load.capacity);
        load.load_over_mean = if mean_per_unit > 0.0 {
            per_unit / mean_per_unit
        } else {
            0.0
        };
        max_over_mean = max_over_mean.max(load.load_over_mean);
        min_over_mean = min_over_mean.min(load.load_over_mean);
    }
    if max_over_mean < min_over_mean {
        (max_over_mean, min_over_mean) = (0.0, 0.0);
    }
    BalanceReport {
        sample_keys,
        max_over_mean,
        min_over_mean,
        per_node,
    }
}

/// How much of the sample a layout change moves, under three definitions, each with its
/// ideal (the least any placement honouring the capacities could move).
#[derive(Debug, Clone, PartialEq)]
pub struct MovementReport {
    pub sample_keys: usize,
    /// Keys whose primary (first replica) changed. Ideal: the capacity share that has to
    /// change hands, e.g. `1/6` when a 6th equal node joins 5 (or one of 6 leaves).
    pub primary_moved_fraction: f64,
    pub primary_ideal_fraction: f64,
    /// Key-replica placements that are new (node in the new set, not in the old one),
    /// over `keys * N`: the data that has to be streamed. Ideal: as for primaries
    /// (`1/6` for the join), since every node should hold `N/n` of the keys.
    pub placements_moved_fraction: f64,
    pub placements_ideal_fraction: f64,
    /// Keys whose replica *set* changed at all (any replica moved). Ideal:
    /// `N * placements_ideal` capped at 1: for the join the new node must appear in
    /// `N/6` of all keys' sets, each such key gaining one placement; exact for one
    /// node joining or leaving, a lower-bound estimate for bigger changes.
    pub replica_set_changed_fraction: f64,
    pub replica_set_ideal_fraction: f64,
}

/// The brief's headline pair: `(primary moved fraction, ideal)`. See [`key_movement`]
/// for the replica-level definitions.
pub fn keys_moved_fraction(old: &RingLayout, new: &RingLayout, sample_keys: usize) -> (f64, f64) {
    let report = key_movement(old, new, sample_keys);
    (report.primary_moved_fraction, report.primary_ideal_fraction)
}

pub fn key_movement(old: &RingLayout, new: &RingLayout, sample_keys: usize) -> MovementReport {
    let (mut primary_moved, mut placements_moved, mut sets_changed) = (0u64, 0u64, 0u64);
    for index in 0..sample_keys {
        let key = sample_key(index);
        let (before, after) = (old.preference_list(&key), new.preference_list(&key));
        if before.first() != after.first() {
            primary_moved += 1;
        }
        let arrivals = after.iter().filter(|node| !before.contains(node)).count() as u64;
        placements_moved += arrivals;
        if arrivals > 0 || before.len() != after.len() {
            sets_changed += 1;
        }
    }
    let keys = sample_keys.max(1) as f64;
    let replicas = new.replicas_per_key().max(1) as f64;
    let primary_ideal = capacity_share_shift(old, new);
    MovementReport {
        sample_keys,
        primary_moved_fraction: primary_moved as f64 / keys,
        primary_ideal_fraction: primary_ideal,
        placements_moved_fraction: placements_moved as f64 / (keys * replicas),
        placements_ideal_fraction: primary_ideal,
        replica_set_changed_fraction: sets_changed as f64 / keys,
        replica_set_ideal_fraction: (primary_ideal * replicas).min(1.0),
    }
}

/// Total capacity share gained by nodes whose share grows from `old` to `new`: the
/// fraction of the ring that has to change hands at the least.
fn capacity_share_shift(old: &RingLayout, new: &RingLayout) -> f64 {
    let shares = |layout: &RingLayout| -> BTreeMap<NodeId, f64> {
        let total: f64 = layout
            .nodes()
            .values()
            .map(|spec| f64::from(spec.capacity))
            .sum();
        layout
            .nodes()
            .values()
            .filter(|spec| spec.capacity > 0)
            .map(|spec| (spec.id, f64::from(spec.capacity) / total))
            .collect()
    };
    let (before, after) = (shares(old), shares(new));
    after
        .iter()
        .map(|(node, share)| (share - before.get(node).copied().unwrap_or(0.0)).max(0.0))
        .sum()
}

//! The simulator against `ringkv_core::node::Node`: 300 seeds of every fault kind.
#![allow(clippy::unwrap_used)]

use ringkv_tests::sim::broken::BrokenHardware;
use ringkv_tests::sim::cluster::NodeHardware;
use ringkv_tests::sim::{run_seed, SeedReport, SimConfig, Summary};

fn run(config: &SimConfig, seed: u64) -> SeedReport {
    run_seed(NodeHardware::new(config), config, seed).unwrap()
}

#[test]
fn cluster_is_linearizable_and_keeps_acknowledged_writes() {
    let config = SimConfig::default();
    let mut summary = Summary::default();
    for seed in 0..300 {
        let report = run(&config, seed);
        assert!(!report.failed(), "{}", report.render_failure());
        assert_eq!(
            report.inconclusive, 0,
            "seed {seed}: checker could not decide"
        );
        // Anti-entropy compares every range a node shares with a peer in one round
        // trip (root batches), so after the heal all replicas agree well within the cap.
        assert!(
            report.converge_ms.is_some(),
            "seed {seed}: replicas did not converge within {} ms of the heal",
            config.converge_cap_ms
        );
        summary.add(&report);
    }
    println!("{}", summary.text());
    let c = summary.counts;
    assert_eq!((summary.violations, summary.lost_acked), (0, 0));
    assert_eq!(summary.not_converged, 0);
    // Faults hit minorities and majorities: both answers and refusals happen.
    assert!(c.ok > c.issued / 2, "{}", summary.text());
    assert!(c.unavailable > 0, "{}", summary.text());
    assert!(c.indeterminate + c.timed_out > 0, "{}", summary.text());
}

#[test]
fn broken_coordinator_is_caught() {
    // Each node answers gets from a cache of what it last saw (no quorum read).
    let config = SimConfig::small();
    let mut violations = 0;
    for seed in 0..5 {
        let report = run_seed(BrokenHardware(NodeHardware::new(&config)), &config, seed).unwrap();
        if let Some(f) = report.findings.first() {
            assert!(f.violation.explanation.contains("not linearizable"));
            assert!(!f.trace.is_empty());
        }
        violations += report.violations();
    }
    assert!(violations >= 1);
}

#[test]
fn wiped_disks_show_as_lost_acknowledged_writes() {
    let config = SimConfig::small();
    let lost: usize = (0..3)
        .map(|seed| {
            let hw = NodeHardware::new(&config).wipe_on_power_loss();
            run_seed(hw, &config, seed).unwrap().lost_acked()
        })
        .sum();
    assert!(lost >= 1);
}

#[test]
fn a_seed_reproduces_byte_for_byte() {
    let config = SimConfig::small();
    let (a, b) = (run(&config, 11), run(&config, 11));
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a, b);
    assert_ne!(a.trace_hash, run(&config, 12).trace_hash);
}

//! The simulator end to end on the toy ABD cluster (no `ringkv_core::node` needed):
//! a correct protocol passes, broken ones are caught, seeds reproduce.
#![allow(clippy::unwrap_used)]

use ringkv_tests::sim::broken::BrokenHardware;
use ringkv_tests::sim::toy::ToyHardware;
use ringkv_tests::sim::{run_seed, SeedReport, SimConfig, Summary};

fn toy(config: &SimConfig) -> ToyHardware {
    ToyHardware::new(config.nodes, config.replicas, config.request_timeout_ms)
}

fn run(config: &SimConfig, seed: u64) -> SeedReport {
    run_seed(toy(config), config, seed).unwrap()
}

#[test]
fn correct_abd_passes_many_seeds_and_exercises_every_path() {
    let config = SimConfig::default();
    let mut summary = Summary::default();
    for seed in 0..40 {
        let report = run(&config, seed);
        assert!(!report.failed(), "{}", report.render_failure());
        assert_eq!(report.inconclusive, 0, "seed {seed}");
        summary.add(&report);
    }
    let c = summary.counts;
    assert_eq!((summary.violations, summary.lost_acked), (0, 0));
    // Faults make both the success and the refusal paths happen.
    assert!(c.ok > c.issued / 2, "{}", summary.text());
    assert!(c.unavailable > 0, "{}", summary.text());
    assert!(c.indeterminate + c.timed_out > 0, "{}", summary.text());
    assert!(summary.converge_ms_p50().is_some(), "{}", summary.text());
    // The toy has no eventual mode: the set workload does not run against it.
    assert_eq!(summary.set_counts.writes + summary.set_counts.reads, 0);
}

#[test]
fn caching_coordinator_is_caught() {
    let config = SimConfig::small();
    let violations: usize = (0..5)
        .map(|seed| {
            let report = run_seed(BrokenHardware::new(toy(&config)), &config, seed).unwrap();
            if report.violations() > 0 {
                // A finding names the key's ops and shows a trace.
                let text = report.render_failure();
                assert!(text.contains("not linearizable"), "{text}");
                assert!(!report.findings[0].trace.is_empty(), "{text}");
            }
            report.violations()
        })
        .sum();
    assert!(violations >= 1);
}

#[test]
fn lost_acknowledged_writes_are_caught() {
    // Disks that forget everything on power loss: the restart of every node after the
    // run loses acknowledged writes, which the post-heal reads expose.
    let config = SimConfig::small();
    let lost: usize = (0..3)
        .map(|seed| {
            let hw = toy(&config).forgetful();
            let report = run_seed(hw, &config, seed).unwrap();
            report.lost_acked()
        })
        .sum();
    assert!(lost >= 1);
}

#[test]
fn a_seed_reproduces_byte_for_byte() {
    let config = SimConfig::small();
    let a = run(&config, 7);
    let b = run(&config, 7);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a, b);
    let c = run(&config, 8);
    assert_ne!(a.trace_hash, c.trace_hash);
    // Also for a failing run, findings and traces included.
    let broken = |seed| run_seed(BrokenHardware::new(toy(&config)), &config, seed).unwrap();
    assert_eq!(broken(3), broken(3));
}

#[test]
fn other_cluster_sizes_work() {
    for nodes in [1, 3, 7] {
        let config = SimConfig {
            nodes,
            replicas: nodes.min(3),
            ..SimConfig::small()
        };
        let report = run(&config, 1);
        assert!(
            !report.failed(),
            "{nodes} nodes: {}",
            report.render_failure()
        );
    }
}

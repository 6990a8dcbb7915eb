//! Mutation tests: `Node` with one deliberate bug switched on (`ringkv_core::node::
//! mutations`) must fail the simulator's checks within a fixed set of seeds of the
//! sharp profile (`SimConfig::hot`), and the unmutated node must pass the same seeds.
//!
//! Every mutation must be caught by at least `CATCHES` seeds among the first `SEEDS`
//! (the sim is deterministic, so this holds in every run); each stops at its
//! `CATCHES`-th catch to keep the suite short. With catch rates near 40 %
//! (docs/simulation.md) the first catches come within the first ten seeds; a change
//! that makes the set miss a mutation must either fix the sharpening or show, with
//! `sim --hot --catch-rates --seeds 1000`, that the rate is still what the docs say.
#![allow(clippy::unwrap_used)]

use ringkv_tests::sim::cluster::NodeHardware;
use ringkv_tests::sim::mutations::{caught, run_mutated, Mutation};
use ringkv_tests::sim::{run_seed, SimConfig, Summary};

/// The seed set: `0..SEEDS` of `SimConfig::hot()`.
const SEEDS: u64 = 100;
/// Catching seeds each mutation needs in that set: a catch must not hinge on one seed.
const CATCHES: usize = 5;

/// Runs `mutation` over the seed set until `CATCHES` seeds caught it.
fn assert_caught(mutation: Mutation) {
    let config = SimConfig::hot();
    let mut catching = Vec::new();
    for seed in 0..SEEDS {
        let report = run_mutated(mutation, &config, seed).unwrap();
        if caught(&report) {
            if catching.is_empty() {
                // What a catch looks like: a finding with its ops and trace.
                let finding = &report.findings[0];
                assert!(
                    finding.violation.explanation.contains("not linearizable"),
                    "{}",
                    report.render_failure()
                );
                assert!(!finding.trace.is_empty());
            }
            catching.push(seed);
            if catching.len() == CATCHES {
                println!("{mutation}: caught by seeds {catching:?}");
                return;
            }
        }
    }
    panic!(
        "mutation {mutation} caught by only {} of seeds 0..{SEEDS} (need {CATCHES}): \
         {catching:?}; measure with `sim --hot --catch-rates --mutation {mutation} --seeds 1000`",
        catching.len()
    );
}

#[test]
fn skipping_the_read_write_back_is_caught() {
    assert_caught(Mutation::SkipReadWriteBack);
}

#[test]
fn acknowledging_a_put_after_one_replica_is_caught() {
    assert_caught(Mutation::AckPutAfterOne);
}

#[test]
fn issuing_tags_without_the_lease_after_a_restart_is_caught() {
    assert_caught(Mutation::TagsWithoutLease);
}

/// Adding a mutation means adding its test above: this fails until then.
#[test]
fn every_mutation_has_a_test() {
    assert_eq!(
        Mutation::ALL,
        [
            Mutation::SkipReadWriteBack,
            Mutation::AckPutAfterOne,
            Mutation::TagsWithoutLease
        ]
    );
}

/// The sharp profile does not fail a correct node: the whole seed set passes, with
/// every check, and exercises what the mutations need (crashes mid-send, broken
/// connections, indeterminate and unavailable outcomes).
#[test]
fn the_unmutated_node_passes_the_same_seeds() {
    let config = SimConfig::hot();
    let mut summary = Summary::default();
    for seed in 0..SEEDS {
        let report = run_seed(NodeHardware::new(&config), &config, seed).unwrap();
        assert!(!report.failed(), "{}", report.render_failure());
        assert_eq!(
            report.inconclusive, 0,
            "seed {seed}: checker could not decide"
        );
        assert!(
            report.converge_ms.is_some(),
            "seed {seed}: replicas did not converge within {} ms of the heal",
            config.converge_cap_ms
        );
        summary.add(&report);
    }
    println!("{}", summary.text());
    assert_eq!((summary.violations, summary.lost_acked), (0, 0));
    let c = summary.counts;
    assert!(c.ok > c.issued / 2, "{}", summary.text());
    assert!(c.unavailable > 0, "{}", summary.text());
    assert!(c.timed_out > 0, "{}", summary.text());
}

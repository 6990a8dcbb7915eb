//! Mutation tests: `Node` with one deliberate bug switched on (`ringkv_core::node::
//! mutations`) must fail the simulator's checks within a fixed set of seeds of the
//! sharp profile for its code path (`profile_of`: `SimConfig::hot` for the
//! coordinator's bugs, `SimConfig::membership` for the membership proposer's), and the
//! unmutated node must pass the same seeds.
//!
//! Every mutation must be caught by at least `CATCHES` seeds among the first `SEEDS`
//! (the sim is deterministic, so this holds in every run); each stops at its
//! `CATCHES`-th catch to keep the suite short. With catch rates of 40 % and more
//! (docs/simulation.md) the first catches come within the first ten seeds; a change
//! that makes the set miss a mutation must either fix the sharpening or show, with
//! `sim --catch-rates --seeds 1000`, that the rate is still what the docs say.
#![allow(clippy::unwrap_used)]

use ringkv_tests::sim::cluster::NodeHardware;
use ringkv_tests::sim::mutations::{caught, profile_of, run_mutated, Mutation};
use ringkv_tests::sim::{run_seed, SeedReport, SimConfig, Summary};

/// The seed set: `0..SEEDS` of the mutation's profile.
const SEEDS: u64 = 100;
/// Catching seeds each mutation needs in that set: a catch must not hinge on one seed.
const CATCHES: usize = 5;

/// Runs `mutation` over the seed set until `CATCHES` seeds caught it.
fn assert_caught(mutation: Mutation) {
    let (profile, config) = profile_of(mutation);
    let mut catching = Vec::new();
    for seed in 0..SEEDS {
        let report = run_mutated(mutation, &config, seed).unwrap();
        if caught(&report) {
            if catching.is_empty() {
                assert_shows_the_catch(&report);
            }
            catching.push(seed);
            if catching.len() == CATCHES {
                println!("{mutation}: caught by seeds {catching:?} of profile {profile}");
                return;
            }
        }
    }
    panic!(
        "mutation {mutation} caught by only {} of seeds 0..{SEEDS} of profile {profile} \
         (need {CATCHES}): {catching:?}; measure with \
         `sim --catch-rates --mutation {mutation} --seeds 1000`",
        catching.len()
    );
}

/// What a catch looks like: a finding with its explanation and trace.
fn assert_shows_the_catch(report: &SeedReport) {
    let failure = report.render_failure();
    match (report.findings.first(), report.layout_findings.first()) {
        (Some(finding), _) => {
            let explanation = &finding.violation.explanation;
            assert!(explanation.contains("not linearizable"), "{failure}");
            assert!(!finding.trace.is_empty(), "{failure}");
        }
        (None, Some(finding)) => {
            let explanation = finding.conflict.explanation();
            assert!(explanation.contains("two layouts chosen"), "{failure}");
            assert!(!finding.trace.is_empty(), "{failure}");
        }
        (None, None) => panic!("caught without a finding: {failure}"),
    }
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

#[test]
fn accepting_a_layout_without_a_quorum_is_caught() {
    assert_caught(Mutation::LayoutWithoutQuorum);
}

/// Adding a mutation means adding its test above: this fails until then.
#[test]
fn purging_tombstones_without_confirmation_is_caught() {
    assert_caught(Mutation::PurgeUnconfirmed);
}

#[test]
fn every_mutation_has_a_test() {
    assert_eq!(
        Mutation::ALL,
        [
            Mutation::SkipReadWriteBack,
            Mutation::AckPutAfterOne,
            Mutation::TagsWithoutLease,
            Mutation::LayoutWithoutQuorum,
            Mutation::PurgeUnconfirmed
        ]
    );
}

/// Runs the unmutated node over the seed set of `config`: every seed passes, with every
/// check, and converges after the heal.
fn assert_passes(config: &SimConfig) -> Summary {
    let mut summary = Summary::default();
    for seed in 0..SEEDS {
        let report = run_seed(NodeHardware::new(&config.for_seed(seed)), config, seed).unwrap();
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
    assert_eq!(summary.layout_conflicts, 0);
    summary
}

/// The sharp profile does not fail a correct node: the whole seed set passes, and
/// exercises what the coordinator's mutations need (crashes mid-send, broken
/// connections, indeterminate and unavailable outcomes).
#[test]
fn the_unmutated_node_passes_the_hot_seeds() {
    let summary = assert_passes(&SimConfig::hot());
    let c = summary.counts;
    assert!(c.ok > c.issued / 2, "{}", summary.text());
    assert!(c.unavailable > 0, "{}", summary.text());
    assert!(c.timed_out > 0, "{}", summary.text());
}

/// Nor does the membership profile, and its changes do race: several changes are
/// chosen per seed, and more proposals lose (told their change was not made) or end
/// unknown.
#[test]
fn the_unmutated_node_passes_the_membership_seeds() {
    let summary = assert_passes(&SimConfig::membership());
    let m = summary.membership;
    assert!(m.chosen > SEEDS, "{}", summary.text());
    assert!(m.refused > m.chosen, "{}", summary.text());
    assert!(summary.counts.ok > 0, "{}", summary.text());
}

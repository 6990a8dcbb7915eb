//! Mutation testing: `Node` run with one deliberate bug switched on
//! (`ringkv_core::node::mutations`), and whether the checks catch it.
//!
//! A seed *catches* a mutation when its register histories show a violation or a lost
//! acknowledged write (what a wrong coordinator produces), or two nodes held different
//! layouts of one version (what a wrong membership change produces, `layouts.rs`).
//! (Other failures — an unreadable key, a protocol error — are not counted: they
//! would also be bugs, but not the evidence the mutation tests are about.) The catch
//! rate of a mutation is the share of seeds that catch it; docs/simulation.md has the
//! measured table. Each mutation is measured on the profile sharp for the code path it
//! breaks ([`profile_of`]).

use std::ops::Range;

pub use ringkv_core::node::mutations::Mutation;

use super::cluster::NodeHardware;
use super::config::SimConfig;
use super::error::SimError;
use super::run::{run_seed, SeedReport};

/// Whether `report` shows what a wrong coordinator or membership change must produce:
/// a register history that is not linearizable, with or without the post-heal reads,
/// or a layout version that named two layouts.
pub fn caught(report: &SeedReport) -> bool {
    report.violations() + report.lost_acked() + report.layout_findings.len() > 0
}

/// The profile the mutation tests run `mutation` on, and its name (as `sim` spells
/// it): `SimConfig::hot` for the coordinator's bugs, `SimConfig::membership` (racing
/// membership changes) for the proposer's.
pub fn profile_of(mutation: Mutation) -> (&'static str, SimConfig) {
    match mutation {
        Mutation::LayoutWithoutQuorum => ("membership", SimConfig::membership()),
        Mutation::SkipReadWriteBack | Mutation::AckPutAfterOne | Mutation::TagsWithoutLease => {
            ("hot", SimConfig::hot())
        }
        Mutation::PurgeUnconfirmed => ("deletes", SimConfig::deletes()),
    }
}

/// One seed of `Node` with `mutation` on.
pub fn run_mutated(
    mutation: Mutation,
    config: &SimConfig,
    seed: u64,
) -> Result<SeedReport, SimError> {
    run_seed(
        NodeHardware::new(&config.for_seed(seed)).with_mutation(mutation),
        config,
        seed,
    )
}

/// How often one mutation was caught over a range of seeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchRate {
    pub mutation: Mutation,
    /// The profile's name.
    pub profile: &'static str,
    pub seeds: u64,
    /// Seeds that caught it, ascending.
    pub caught_seeds: Vec<u64>,
    /// Seeds whose run failed with an error (counted as not caught).
    pub errors: Vec<(u64, SimError)>,
}

impl CatchRate {
    pub fn new(mutation: Mutation, profile: &'static str) -> Self {
        CatchRate {
            mutation,
            profile,
            seeds: 0,
            caught_seeds: Vec::new(),
            errors: Vec::new(),
        }
    }

    pub fn add(&mut self, seed: u64, result: &Result<SeedReport, SimError>) {
        self.seeds += 1;
        match result {
            Ok(report) if caught(report) => self.caught_seeds.push(seed),
            Ok(_) => {}
            Err(error) => self.errors.push((seed, error.clone())),
        }
    }

    pub fn caught(&self) -> u64 {
        self.caught_seeds.len() as u64
    }

    /// Caught seeds per seed run, 0 with no seeds.
    pub fn rate(&self) -> f64 {
        if self.seeds == 0 {
            return 0.0;
        }
        self.caught() as f64 / self.seeds as f64
    }

    /// Runs `mutation` over `seeds` with `config` (the profile named `profile`).
    pub fn measure(
        mutation: Mutation,
        profile: &'static str,
        config: &SimConfig,
        seeds: Range<u64>,
    ) -> Self {
        let mut rate = CatchRate::new(mutation, profile);
        for seed in seeds {
            rate.add(seed, &run_mutated(mutation, config, seed));
        }
        rate
    }

    /// The header of [`CatchRate::row`]s.
    pub fn header() -> String {
        format!(
            "{:<22} {:<11} {:>6} {:>7} {:>7} {:>12} {:>7}",
            "mutation", "profile", "seeds", "caught", "rate", "first seed", "errors"
        )
    }

    /// One table row: mutation, profile, seeds run, seeds caught, rate, first catching
    /// seed, errors.
    pub fn row(&self) -> String {
        let first = self
            .caught_seeds
            .first()
            .map_or("-".to_string(), u64::to_string);
        format!(
            "{:<22} {:<11} {:>6} {:>7} {:>6.1}% {:>12} {:>7}",
            self.mutation.name(),
            self.profile,
            self.seeds,
            self.caught(),
            self.rate() * 100.0,
            first,
            self.errors.len()
        )
    }

    /// One JSON object (numbers, strings without escapes and `null` only).
    pub fn json(&self) -> String {
        let first = self
            .caught_seeds
            .first()
            .map_or("null".to_string(), u64::to_string);
        format!(
            "{{\"mutation\":\"{}\",\"profile\":\"{}\",\"seeds\":{},\"caught\":{},\"rate\":{:.4},\"first_caught_seed\":{},\"errors\":{}}}",
            self.mutation.name(),
            self.profile,
            self.seeds,
            self.caught(),
            self.rate(),
            first,
            self.errors.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_json() {
        let mut rate = CatchRate::new(Mutation::AckPutAfterOne, "hot");
        assert_eq!(rate.rate(), 0.0);
        rate.add(7, &Err(SimError::EventBudget(1)));
        rate.seeds += 3;
        rate.caught_seeds = vec![8, 10];
        assert!(rate.row().contains("ack-put-after-one"), "{}", rate.row());
        assert!(rate.row().contains("50.0%"), "{}", rate.row());
        assert!(rate.row().contains(" hot "), "{}", rate.row());
        assert_eq!(
            rate.json(),
            "{\"mutation\":\"ack-put-after-one\",\"profile\":\"hot\",\"seeds\":4,\"caught\":2,\"rate\":0.5000,\"first_caught_seed\":8,\"errors\":1}"
        );
    }

    #[test]
    fn every_mutation_has_a_valid_profile() {
        for &mutation in Mutation::ALL {
            let (name, config) = profile_of(mutation);
            assert!(config.validate().is_ok(), "{mutation}: {name}");
        }
        // The proposer's bug needs proposals that race; the coordinator's do not.
        let (_, membership) = profile_of(Mutation::LayoutWithoutQuorum);
        assert!(membership.faults.membership_racers > 1 && membership.spare_nodes > 0);
    }
}

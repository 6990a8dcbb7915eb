//! Everything a run is parameterised by, besides its seed.

use super::error::SimError;
use super::faults::FaultConfig;
use super::network::NetConfig;
use super::sets::SetConfig;
use super::workload::WorkloadConfig;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Initial members.
    pub nodes: usize,
    /// Machines started with no member list, for membership changes to add (only
    /// implementations with membership changes use them).
    pub spare_nodes: usize,
    /// Replicas per key (N); quorums are N/2 + 1.
    pub replicas: usize,
    pub workload: WorkloadConfig,
    /// The eventual-mode set workload, run alongside where the nodes support it.
    pub sets: SetConfig,
    pub net: NetConfig,
    pub faults: FaultConfig,
    /// Clients issue requests and faults happen during this long.
    pub workload_ms: u64,
    /// Per-node timer rate, per mille, drawn uniformly from this range.
    pub skew_permille: (u64, u64),
    /// Client <-> node message delay: clients are not partitioned, only slow.
    pub client_delay_ms: (u64, u64),
    /// Passed to the nodes: a quorum phase's timeout.
    pub request_timeout_ms: u64,
    pub gossip_interval_ms: u64,
    /// After the heal, how long to wait for every key's replicas to agree.
    pub converge_cap_ms: u64,
    /// Post-run reads of every key: attempts and the pause between them (a node that
    /// just restarted may still believe its peers dead).
    pub verify_attempts: u32,
    pub verify_retry_ms: u64,
    /// After those reads, read every key once more through every node, one read after
    /// another: replicas that disagree about what a tag holds (a reused tag) make the
    /// answers flip between coordinators. Off in the default runs; the hot profile
    /// uses it.
    pub verify_through_every_node: bool,
    /// Events per run before the run is declared stuck.
    pub events_max: u64,
    /// Trace lines kept for failure reports (the hash covers all of them).
    pub trace_lines_max: usize,
    /// Lines of a key's trace shown per finding.
    pub trace_lines_shown: usize,
    /// Print every trace line as it happens.
    pub trace_echo: bool,
    /// Clients notice a crash at once: requests in flight at a node that crashes, or
    /// sent to a node that is down, end `Unknown` a client delay later instead of at
    /// the client's deadline (a broken connection rather than silence). Off in the
    /// default runs; the hot profile uses it so crashes do not idle its
    /// clients.
    pub clients_see_crashes: bool,
    /// Passed to the nodes: tombstone purge rounds (0: off).
    pub purge_interval_ms: u64,
    /// Every this many seeds (seed % n == 0) run delete-heavy (`delete_heavy_pct` of
    /// requests delete) and, after the final restart, wait up to `purge_settle_ms` for
    /// every member's tombstones of the workload keys to be purged; the count left is
    /// reported and fails the seed. 0: never.
    pub delete_heavy_every: u64,
    pub delete_heavy_pct: u64,
    pub purge_settle_ms: u64,
    /// Passed to the nodes: a change pending this long with a dead joiner is fenced
    /// (and aborted once it can never commit; `ring/history.rs`). 0: never.
    pub change_timeout_ms: u64,
    /// Every this many seeds (seed % n == n / 2 + 1), a machine that joins dies for good
    /// soon after it is asked to (`Fault::LoseForever`), and the run's shape cycles
    /// through 2 members with N = 2, 3 with N = 2 and the usual one, so that some of
    /// those changes stall and must be aborted. After the heal, a lost machine still in
    /// the layout is force-removed (`settle_lost`); a seed whose layout does not settle
    /// without it within `lost_settle_ms` does not converge. 0: never.
    pub lose_joiner_every: u64,
    pub lost_settle_ms: u64,
    /// A leave never takes the layout below this many members (nor below `replicas`).
    /// Seeds that lose a machine keep at least 3, so that losing one never costs the
    /// layout's majority: a 2-member layout that loses one can change nothing more (its
    /// Paxos needs both), as in any majority-based system, which is not what those
    /// seeds test.
    pub members_min: usize,
    /// Every this many seeds (seed % n == n / 2, unless the seed loses a joiner) run
    /// the shard mix: `shard_members` members and `shard_spares` spare machines,
    /// grouped into processes of 1–3 shards (`processes`, drawn from the seed). Each
    /// shard is a ring member of its own, naming its process (`NodeSpec::process`); a
    /// process crashes, restarts and pauses as a whole and partitions never split one
    /// (`faults.rs`). Lost-joiner seeds are left out (their shapes are 2–5 members);
    /// one shard seed in four loses a whole process instead (`loses_process`). 0: never.
    pub shards_every: u64,
    /// One seed in `scans_every` (those with `seed % scans_every == scans_every - 1`)
    /// runs the scan mix: a scanner walks the keyspace with scan pages during the
    /// workload, each completed scan checked against the register history
    /// (`scans.rs`). 0: never.
    pub scans_every: u64,
    /// One seed in `updates_every` (those with `seed % updates_every == 1`, or all of
    /// them when it is 1) runs the update mix (3, by default: coprime with the other
    /// mixes' 4 and 8, so it meets each of them): `update_pct` % of the register workload's
    /// requests are conditional sets and adds on the same keys as its puts, and some
    /// puts write decimal integers (`WorkloadConfig::update_pct`). Only on hardware
    /// that serves updates (`Hardware::supports_updates`). 0: never.
    pub updates_every: u64,
    pub update_pct: u64,
    pub shard_members: usize,
    pub shard_spares: usize,
    /// Machines grouped into processes, in order: process k is the next `processes[k]`
    /// machines. Empty: every machine its own process, naming none in its spec (every
    /// mix but the shard mix; `for_seed` fills it for shard seeds).
    pub processes: Vec<usize>,
}

impl SimConfig {
    /// Every seed delete-heavy, purged and checked for it (the default profile does
    /// one in `delete_heavy_every`).
    pub fn deletes() -> Self {
        SimConfig {
            delete_heavy_every: 1,
            // Calibrated for the purge mutation's test: the shapes it was measured on.
            shards_every: 0,
            scans_every: 0,
            updates_every: 0,
            ..SimConfig::default()
        }
    }

    /// Every seed in the shard mix (`shards_every`), but the lost-joiner ones.
    pub fn shards() -> Self {
        SimConfig {
            shards_every: 1,
            ..SimConfig::default()
        }
    }

    /// Every seed in the update mix (`updates_every`).
    pub fn updates() -> Self {
        SimConfig {
            updates_every: 1,
            ..SimConfig::default()
        }
    }

    /// The configuration seed `seed` runs with: the delete-heavy mix on every
    /// `delete_heavy_every`-th seed.
    pub fn for_seed(&self, seed: u64) -> SimConfig {
        let mut config = self.clone();
        if self.sharded(seed) {
            config.nodes = self.shard_members;
            config.spare_nodes = self.shard_spares;
            config.replicas = self.replicas.min(self.shard_members);
            config.processes = draw_processes(self.shard_members + self.shard_spares, seed);
            if self.loses_process(seed) {
                // Losing up to 3 members at once: see `loses_process`.
                config.members_min = 6;
            }
        }
        if self.loses_joiner(seed) {
            let shapes = [(2, 2), (3, 2), (self.nodes, self.replicas)];
            let (nodes, replicas) = shapes[(seed / self.lose_joiner_every) as usize % 3];
            config.nodes = nodes;
            config.replicas = replicas.min(nodes);
            config.spare_nodes = config.spare_nodes.max(1);
            config.members_min = 3;
        }
        if !self.delete_heavy(seed) {
            return config;
        }
        let gets = config
            .workload
            .get_pct
            .min(100 - self.delete_heavy_pct.min(100));
        config.workload.get_pct = gets;
        config.workload.delete_pct = self.delete_heavy_pct.min(100 - gets);
        config
    }

    /// Whether seed `seed` loses a joining machine for good (`lose_joiner_every`).
    pub fn loses_joiner(&self, seed: u64) -> bool {
        self.lose_joiner_every > 0
            && self.change_timeout_ms > 0
            && seed % self.lose_joiner_every == self.lose_joiner_every / 2 + 1
    }

    /// The configuration seed `seed` runs with on hardware that does or does not place
    /// replicas by process (`Hardware::supports_processes`): without it, never the
    /// shard mix.
    pub fn for_hardware(&self, seed: u64, processes: bool) -> SimConfig {
        if processes {
            return self.for_seed(seed);
        }
        SimConfig {
            shards_every: 0,
            ..self.clone()
        }
        .for_seed(seed)
    }

    /// Whether seed `seed` runs the scan mix (`scans_every`).
    pub fn scanned(&self, seed: u64) -> bool {
        self.scans_every > 0 && seed % self.scans_every == self.scans_every - 1
    }

    /// Whether seed `seed` runs the update mix (`updates_every`).
    pub fn updated(&self, seed: u64) -> bool {
        self.updates_every > 0 && seed % self.updates_every == 1 % self.updates_every
    }

    /// Whether seed `seed` runs the shard mix (`shards_every`).
    pub fn sharded(&self, seed: u64) -> bool {
        self.shards_every > 0
            && seed % self.shards_every == self.shards_every / 2
            && !self.loses_joiner(seed)
    }

    /// Whether shard seed `seed` loses the process of its first chosen joiner for good,
    /// every shard of it at one instant (one shard seed in four; only with
    /// `lose_joiner_every` and `change_timeout_ms` on): the lost members are then
    /// force-removed one by one (`settle_lost`), each removal rebuilding the member's
    /// ranges from replicas in other processes.
    ///
    /// What is sound to ask then is narrower than the rest of the mix, because of a
    /// limit of the membership protocol (ARCHITECTURE.md, "Aborting a change"): a
    /// member counts as synced only once a majority of its claim voters (the committed
    /// layout's other members) hold its claim, and a live member's claim is never
    /// excluded, so a change pending while half of a live member's voters are dead
    /// can neither commit nor abort (seeds 70 and 214 of the first 300: a join or leave
    /// asked after a 3-shard process of 7 members was lost stayed pending for good).
    /// So from the moment the loss is decided the operator asks for no other change
    /// until the lost members are removed (`World`'s membership hold), and leaves never
    /// take the layout below 6 members: the joiner's own change, pending with at most 2
    /// of its process's members of at least 6 dead, and each forced removal (voters:
    /// the others but the removed member) keep a live majority of voters.
    pub fn loses_process(&self, seed: u64) -> bool {
        self.sharded(seed)
            && self.lose_joiner_every > 0
            && self.change_timeout_ms > 0
            && (seed / self.shards_every) % 4 == 1
    }

    /// The processes of a run over `machines` machines: lists of machine indices, each
    /// machine in exactly one (see `processes`).
    pub fn process_groups(&self, machines: usize) -> Vec<Vec<usize>> {
        let mut groups = Vec::new();
        let mut next = 0;
        for &size in &self.processes {
            let end = (next + size.max(1)).min(machines);
            if next < end {
                groups.push((next..end).collect());
            }
            next = end;
        }
        groups.extend((next..machines).map(|i| vec![i]));
        groups
    }

    /// Whether seed `seed` is one of the delete-heavy mix (purge checked after it).
    pub fn delete_heavy(&self, seed: u64) -> bool {
        self.delete_heavy_every > 0
            && self.purge_interval_ms > 0
            && seed.is_multiple_of(self.delete_heavy_every)
    }
}

/// Process sizes of 1–3 covering `machines`, drawn from `seed` alone (a stream of its
/// own, so nothing else in the run shifts).
fn draw_processes(machines: usize, seed: u64) -> Vec<usize> {
    let mut rng = ringkv_core::rand::SplitMix64::new(seed ^ 0x5348_4152_4453);
    let mut sizes = Vec::new();
    let mut left = machines;
    while left > 0 {
        let size = (1 + rng.below(3) as usize).min(left);
        sizes.push(size);
        left -= size;
    }
    sizes
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 5,
            spare_nodes: 1,
            replicas: 3,
            workload: WorkloadConfig::default(),
            sets: SetConfig::default(),
            net: NetConfig::default(),
            faults: FaultConfig::default(),
            workload_ms: 8_000,
            skew_permille: (900, 1100),
            client_delay_ms: (1, 3),
            request_timeout_ms: 500,
            gossip_interval_ms: 100,
            converge_cap_ms: 10_000,
            verify_attempts: 20,
            verify_retry_ms: 250,
            verify_through_every_node: false,
            events_max: 20_000_000,
            trace_lines_max: 200_000,
            trace_lines_shown: 60,
            purge_interval_ms: 1_000,
            delete_heavy_every: 4,
            delete_heavy_pct: 40,
            purge_settle_ms: 6_000,
            change_timeout_ms: 3_000,
            lose_joiner_every: 8,
            lost_settle_ms: 30_000,
            members_min: 0,
            shards_every: 4,
            scans_every: 4,
            updates_every: 3,
            update_pct: 30,
            shard_members: 7,
            shard_spares: 2,
            processes: Vec::new(),
            trace_echo: false,
            clients_see_crashes: false,
        }
    }
}

impl SimConfig {
    /// A shorter run, for debug-build test suites.
    pub fn small() -> Self {
        SimConfig {
            workload_ms: 4_000,
            workload: WorkloadConfig {
                ops_per_client: 40,
                ..WorkloadConfig::default()
            },
            converge_cap_ms: 5_000,
            ..SimConfig::default()
        }
    }

    /// The coordinator mutations' profile (docs/simulation.md, "Mutations"): sharp
    /// enough that a wrong coordinator shows within a few seeds, and still a run the
    /// correct node must pass.
    ///
    /// - Hot keys, read-heavy: 8 clients on 4 keys, 88 % gets, so reads race every
    ///   write that only some replicas hold yet, and a wrong value, once stored, is read
    ///   several times before the next write replaces it.
    /// - A key's writes keep to one coordinator (80 %, `write_sticky_pct`), so the
    ///   coordinator that crashed in the middle of a write is the one that writes the
    ///   key next.
    /// - 60 crashes mid-send per run (`midsend.rs`): a write left on a minority, its
    ///   coordinator back 1-3 ms later; clients notice crashes at once
    ///   (`clients_see_crashes`) and retry a broken write through the same node
    ///   (`retry_broken_writes`): the restarted coordinator writes that key again at once.
    /// - After the heal, every key is read through every node (`verify_through_every_node`).
    /// - The usual fault epochs, with fewer majority outages (they only idle clients).
    ///   No set workload, no membership changes and no spare machine: they do not touch
    ///   these code paths and would make each seed several times slower (a layout
    ///   message's trace line is long).
    pub fn hot() -> Self {
        SimConfig {
            spare_nodes: 0,
            workload_ms: 4_000,
            workload: WorkloadConfig {
                clients: 8,
                keys: 4,
                ops_per_client: 80,
                think_ms_max: 10,
                get_pct: 88,
                delete_pct: 4,
                write_sticky_pct: 80,
                retry_broken_writes: true,
                client_timeout_ms: 1_100,
                update_pct: 0,
            },
            sets: SetConfig {
                clients: 0,
                ..SetConfig::default()
            },
            faults: FaultConfig {
                majority_pct: 10,
                membership_changes: 0,
                mid_send_crashes: 60,
                mid_send_downtime_ms: (1, 3),
                ..FaultConfig::default()
            },
            clients_see_crashes: true,
            verify_through_every_node: true,
            // Calibrated for its mutation tests: no lost machines, no shards.
            lose_joiner_every: 0,
            shards_every: 0,
            scans_every: 0,
            updates_every: 0,
            ..SimConfig::default()
        }
    }

    /// The layout mutation's profile (docs/simulation.md, "Mutations"): membership
    /// changes that race, so Paxos for a layout version has several proposers at once.
    ///
    /// - Every change is asked of `membership_racers` members at once, each its own
    ///   change (a join of a spare, a member's leave): all but one must be told theirs
    ///   was not made, and every node must end up with the one chosen.
    /// - Changes come often (`membership_changes` over a short run) and there are two
    ///   spare machines, so a run makes several.
    /// - The usual fault epochs, so proposals lose messages, acceptors crash between
    ///   promise and accept, and proposers retry with higher ballots.
    /// - A light register workload (no set workload): the data must still move with
    ///   the changes, linearizably; more would only slow the seeds down.
    pub fn membership() -> Self {
        SimConfig {
            nodes: 5,
            spare_nodes: 2,
            workload_ms: 2_000,
            workload: WorkloadConfig {
                clients: 4,
                keys: 2,
                ops_per_client: 40,
                ..WorkloadConfig::default()
            },
            sets: SetConfig {
                clients: 0,
                ..SetConfig::default()
            },
            faults: FaultConfig {
                membership_changes: 6,
                membership_racers: 3,
                ..FaultConfig::default()
            },
            // Calibrated for its mutation tests: no lost machines, no shards.
            lose_joiner_every: 0,
            shards_every: 0,
            scans_every: 0,
            updates_every: 0,
            ..SimConfig::default()
        }
    }

    pub fn validate(&self) -> Result<(), SimError> {
        let fail = |m: &str| Err(SimError::Config(m.to_string()));
        if self.nodes == 0 || self.replicas == 0 || self.replicas > self.nodes {
            return fail("need 1 <= replicas <= nodes");
        }
        if self.workload.clients == 0 || self.workload.keys == 0 {
            return fail("need at least one client and one key");
        }
        if self.sets.clients > 0 && self.sets.keys == 0 {
            return fail("set clients need at least one set key");
        }
        if self.net.delay_ms_min > self.net.delay_ms_max
            || self.client_delay_ms.0 > self.client_delay_ms.1
            || self.faults.epoch_ms_min > self.faults.epoch_ms_max
            || self.faults.mid_send_downtime_ms.0 > self.faults.mid_send_downtime_ms.1
            || self.skew_permille.0 == 0
            || self.skew_permille.0 > self.skew_permille.1
        {
            return fail("a range has min > max (or a zero skew)");
        }
        if self.workload.client_timeout_ms <= 2 * self.request_timeout_ms {
            return fail("client_timeout_ms must exceed two request timeouts");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_update_mix_takes_one_seed_in_three_and_meets_every_other_mix() {
        let config = SimConfig::default();
        let updated: Vec<u64> = (0..13).filter(|&s| config.updated(s)).collect();
        assert_eq!(updated, vec![1, 4, 7, 10]);
        let meets = |mix: &dyn Fn(u64) -> bool| (0..24).any(|s| config.updated(s) && mix(s));
        assert!(meets(&|s| config.delete_heavy(s)));
        assert!(meets(&|s| config.sharded(s)));
        assert!(meets(&|s| config.scanned(s)));
        assert!(meets(&|s| config.loses_joiner(s)));
        assert!((0..10).all(|s| SimConfig::updates().updated(s)));
        // The mutation profiles keep their streams.
        for profile in [
            SimConfig::hot(),
            SimConfig::membership(),
            SimConfig::deletes(),
        ] {
            assert!((0..100).all(|s| !profile.updated(s)));
        }
    }

    #[test]
    fn the_shard_mix_takes_one_seed_in_four_and_groups_every_machine() {
        let config = SimConfig::default();
        for seed in 0..64 {
            let seeded = config.for_seed(seed);
            let machines = seeded.nodes + seeded.spare_nodes;
            let groups = seeded.process_groups(machines);
            let mut all: Vec<usize> = groups.iter().flatten().copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..machines).collect::<Vec<_>>(), "seed {seed}");
            if config.sharded(seed) {
                assert_eq!(seed % 4, 2);
                assert_eq!((seeded.nodes, seeded.spare_nodes), (7, 2));
                assert!(groups.iter().all(|g| (1..=3).contains(&g.len())));
                assert_eq!(seeded, config.for_seed(seed), "drawn from the seed alone");
                // Hardware without processes runs the seed as it always did.
                let plain = config.for_hardware(seed, false);
                assert!(plain.processes.is_empty());
                assert_eq!(plain.nodes, config.nodes);
            } else {
                assert!(seeded.processes.is_empty(), "seed {seed}");
                assert!(groups.iter().all(|g| g.len() == 1));
                let plain = config.for_hardware(seed, false);
                assert_eq!(plain.shards_every, 0);
                assert_eq!(
                    SimConfig {
                        shards_every: 0,
                        ..seeded
                    },
                    plain
                );
            }
        }
        // One shard seed in four loses a process instead.
        let losing: Vec<u64> = (0..64).filter(|s| config.loses_process(*s)).collect();
        assert_eq!(losing, vec![6, 22, 38, 54]);
        assert_eq!(config.for_seed(6).members_min, 6);
        // Lost-joiner seeds (seed % 8 == 5) never run shards.
        assert!(!SimConfig::shards().sharded(5) && SimConfig::shards().sharded(4));
    }
}

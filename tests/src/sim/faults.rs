//! The fault schedule: drawn up front from the seed, in epochs.
//!
//! Each epoch picks a scenario (calm, partition, crashes, pauses, or a crash plus a
//! partition; some crashes are a failed disk first, the node running on silently until
//! the power cut) and how many nodes it hurts: usually a minority (the cluster must keep
//! serving), sometimes a majority (it must refuse, `Unavailable`, without losing or
//! inventing writes). Everything is undone at the epoch's end.
//!
//! Faults hit *processes*: a process is one or more machines (ring members, "shards")
//! that share one failure domain. A process crashes, restarts and pauses as a whole,
//! every shard at the same instant, and partitions never split one (its shards talk
//! within the process). When every process is one machine (every mix but the shard
//! mix) the schedule is exactly the per-machine one it always was: the same draws, in
//! the same order.

use ringkv_core::rand::SplitMix64;

use super::api::{Name, NodeIndex};
use super::network::Partition;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Partition(Partition),
    Heal,
    /// Power loss: the node's process is gone and its disk keeps only synced bytes
    /// (plus a random prefix of the unsynced tail).
    Crash(NodeIndex),
    Restart(NodeIndex),
    /// Power loss, and the machine never comes back (`SimConfig::lose_joiner_every`).
    LoseForever(NodeIndex),
    /// The node's next sync fails (EIO) and it keeps running: from then on it must say
    /// nothing (the hosts' fail-stop) until a `Crash` and `Restart` recover it from
    /// what its disk holds.
    DiskFails(NodeIndex),
    /// The node processes nothing for `ms` (GC or VM pause, SIGSTOP); what arrives
    /// meanwhile waits, its timers fire late.
    Pause {
        node: NodeIndex,
        ms: u64,
    },
    /// An operator asks a member for a membership change (a join of a spare machine or
    /// a member's leave, picked with `choice` from the cluster's state at that time).
    Membership {
        choice: u64,
    },
    /// Power loss in the middle of the node's next step that sends two or more
    /// messages about keys; it boots `downtime_ms` later (`midsend.rs`).
    CrashMidSend {
        node: NodeIndex,
        downtime_ms: u64,
        choice: u64,
    },
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Partition(p) => write!(f, "partition {p}"),
            Fault::Heal => f.write_str("heal network"),
            Fault::Crash(i) => write!(f, "crash {}", Name(*i)),
            Fault::Restart(i) => write!(f, "restart {}", Name(*i)),
            Fault::LoseForever(i) => write!(f, "lose {} for good", Name(*i)),
            Fault::DiskFails(i) => write!(f, "disk of {} fails its next sync", Name(*i)),
            Fault::Pause { node, ms } => write!(f, "pause {} for {ms} ms", Name(*node)),
            Fault::Membership { .. } => f.write_str("membership change"),
            Fault::CrashMidSend {
                node, downtime_ms, ..
            } => write!(
                f,
                "crash {} during its next send, for {downtime_ms} ms",
                Name(*node)
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultConfig {
    pub epoch_ms_min: u64,
    pub epoch_ms_max: u64,
    /// Epochs without faults, in percent.
    pub calm_pct: u64,
    /// Faulty epochs that hurt a majority of the nodes, in percent.
    pub majority_pct: u64,
    /// Fault-free time at the start, so the cluster forms first.
    pub warmup_ms: u64,
    /// Membership changes attempted per run, at random times (each is skipped while
    /// the previous one is still in progress).
    pub membership_changes: u64,
    /// Members each membership change is asked of at once, each with its own change
    /// where the cluster allows one: proposals for one layout version race (Paxos must
    /// choose one). 1 in the default runs; the membership profile races several.
    pub membership_racers: u64,
    /// Crashed nodes whose disk fails first, in percent: the node runs on with a failed
    /// sync until the crash at the epoch's end.
    pub disk_failure_pct: u64,
    /// Crashes mid-send per run (`midsend.rs`), at random times and nodes, each
    /// followed by a boot after a downtime drawn from `mid_send_downtime_ms`. 0 in the
    /// default runs; the hot profile uses them.
    pub mid_send_crashes: u64,
    pub mid_send_downtime_ms: (u64, u64),
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            epoch_ms_min: 300,
            epoch_ms_max: 1500,
            calm_pct: 20,
            majority_pct: 30,
            warmup_ms: 300,
            membership_changes: 3,
            membership_racers: 1,
            disk_failure_pct: 30,
            mid_send_crashes: 0,
            mid_send_downtime_ms: (1, 50),
        }
    }
}

/// Every machine of `n` its own process.
pub fn singletons(n: usize) -> Vec<Vec<NodeIndex>> {
    (0..n).map(|i| vec![i]).collect()
}

/// The machines of the processes `units` (indices into `processes`), in order.
fn machines_of(processes: &[Vec<NodeIndex>], units: &[usize]) -> Vec<NodeIndex> {
    units
        .iter()
        .flat_map(|&u| processes.get(u).into_iter().flatten().copied())
        .collect()
}

/// `partition` over process indices, as the partition of their machines.
fn expand(processes: &[Vec<NodeIndex>], partition: Partition) -> Partition {
    let all = |units: Vec<usize>| machines_of(processes, &units);
    match partition {
        Partition::Groups(groups) => Partition::Groups(groups.into_iter().map(all).collect()),
        Partition::Bridge {
            left,
            bridge,
            right,
        } => {
            // A bridge process of several shards: its first shard is named; the others
            // are on neither side, so they too reach both (only left-right links are
            // cut).
            let first = processes
                .get(bridge)
                .and_then(|shards| shards.first())
                .copied()
                .unwrap_or_default();
            Partition::Bridge {
                left: all(left),
                bridge: first,
                right: all(right),
            }
        }
        Partition::OneWay { from, to } => Partition::OneWay {
            from: all(from),
            to: all(to),
        },
    }
}

/// `k` distinct nodes out of `n`, in random order.
fn sample(n: usize, k: usize, rng: &mut SplitMix64) -> Vec<NodeIndex> {
    let mut all: Vec<NodeIndex> = (0..n).collect();
    // Partial Fisher-Yates.
    for i in 0..k.min(n) {
        let j = i + rng.below((n - i) as u64) as usize;
        all.swap(i, j);
    }
    all.truncate(k.min(n));
    all
}

fn others(n: usize, of: &[NodeIndex]) -> Vec<NodeIndex> {
    (0..n).filter(|i| !of.contains(i)).collect()
}

/// A partition that cuts `faulty` off. For a majority, every faulty node is alone, so
/// no group holds a quorum; for a minority, one of the shapes from the design.
fn partition_of(n: usize, faulty: &[NodeIndex], rng: &mut SplitMix64) -> Partition {
    let rest = others(n, faulty);
    if faulty.len() * 2 > n {
        let mut groups = vec![rest];
        groups.extend(faulty.iter().map(|&f| vec![f]));
        return Partition::Groups(groups);
    }
    match rng.below(4) {
        0 => Partition::Groups(vec![faulty.to_vec(), rest]),
        // Both sides reach a quorum through the bridge, never each other.
        1 if n >= 3 => {
            let order = sample(n, n, rng);
            let half = (n - 1) / 2;
            Partition::Bridge {
                left: order[..half].to_vec(),
                bridge: order[half],
                right: order[half + 1..].to_vec(),
            }
        }
        2 => Partition::OneWay {
            from: faulty.to_vec(),
            to: rest,
        },
        _ => Partition::OneWay {
            from: rest,
            to: faulty.to_vec(),
        },
    }
}

/// The faults of a run of `duration_ms` over the machines of `processes` (each a
/// non-empty list of machines; [`singletons`] when every machine is its own), as
/// `(time, fault)` sorted by time. Majorities and minorities count processes. Every
/// fault is undone by the end of its epoch, at most `epoch_ms_max` after `duration_ms`.
pub fn schedule(
    processes: &[Vec<NodeIndex>],
    duration_ms: u64,
    config: &FaultConfig,
    rng: &mut SplitMix64,
) -> Vec<(u64, Fault)> {
    let n = processes.len();
    let machines = processes.iter().map(Vec::len).sum::<usize>();
    let shards = |unit: usize| processes.get(unit).cloned().unwrap_or_default();
    let mut out = Vec::new();
    let mut t = config.warmup_ms;
    while t < duration_ms && n > 1 {
        let len = rng.range(config.epoch_ms_min, config.epoch_ms_max);
        let end = t + len;
        let minority_max = ((n - 1) / 2).max(1);
        let k = if rng.chance(config.majority_pct) {
            rng.range(n as u64 / 2 + 1, n as u64 - 1) as usize
        } else {
            rng.range(1, minority_max as u64) as usize
        };
        let faulty = sample(n, k, rng);
        let offset = |rng: &mut SplitMix64| rng.below(len / 4 + 1);
        if !rng.chance(config.calm_pct) {
            match rng.below(4) {
                0 => {
                    let partition = expand(processes, partition_of(n, &faulty, rng));
                    out.push((t, Fault::Partition(partition)));
                    out.push((end, Fault::Heal));
                }
                1 => {
                    // A process's shards lose power together; a failed disk is one
                    // shard's (its first), the others then crash with it.
                    for &f in &faulty {
                        let shards = shards(f);
                        if rng.chance(config.disk_failure_pct) {
                            let at = t + offset(rng);
                            if let Some(&first) = shards.first() {
                                out.push((at, Fault::DiskFails(first)));
                            }
                            out.extend(shards.iter().map(|&s| (end, Fault::Crash(s))));
                        } else {
                            let at = t + offset(rng);
                            out.extend(shards.iter().map(|&s| (at, Fault::Crash(s))));
                        }
                        out.extend(shards.iter().map(|&s| (end, Fault::Restart(s))));
                    }
                }
                2 => {
                    for &f in &faulty {
                        let ms = rng.range(len / 2, len);
                        let at = t + offset(rng);
                        out.extend(
                            shards(f)
                                .into_iter()
                                .map(|node| (at, Fault::Pause { node, ms })),
                        );
                    }
                }
                _ => {
                    // One crash plus a partition of (some of) the others.
                    let crashed = shards(faulty[0]);
                    let at = t + offset(rng);
                    out.extend(crashed.iter().map(|&s| (at, Fault::Crash(s))));
                    out.extend(crashed.iter().map(|&s| (end, Fault::Restart(s))));
                    let cut = sample(n, 1, rng);
                    let partition = expand(processes, partition_of(n, &cut, rng));
                    out.push((t, Fault::Partition(partition)));
                    out.push((end, Fault::Heal));
                }
            }
        }
        t = end;
    }
    for _ in 0..config.membership_changes {
        if duration_ms > config.warmup_ms {
            let at = rng.range(config.warmup_ms, duration_ms);
            out.push((
                at,
                Fault::Membership {
                    choice: rng.next_u64(),
                },
            ));
        }
    }
    // Drawn last, and only if asked for: runs without them keep their schedules.
    for _ in 0..config.mid_send_crashes {
        if duration_ms > config.warmup_ms {
            let at = rng.range(config.warmup_ms, duration_ms);
            let node = rng.below(machines as u64) as usize;
            let (lo, hi) = config.mid_send_downtime_ms;
            let downtime_ms = rng.range(lo, hi);
            let choice = rng.next_u64();
            out.push((
                at,
                Fault::CrashMidSend {
                    node,
                    downtime_ms,
                    choice,
                },
            ));
        }
    }
    // Stable: simultaneous faults keep the order they were drawn in.
    out.sort_by_key(|(time, _)| *time);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_deterministic_balanced_and_undone() {
        let config = FaultConfig::default();
        let a = schedule(&singletons(5), 20_000, &config, &mut SplitMix64::new(3));
        let b = schedule(&singletons(5), 20_000, &config, &mut SplitMix64::new(3));
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0].0 <= w[1].0));
        let crashes = a
            .iter()
            .filter(|(_, f)| matches!(f, Fault::Crash(_)))
            .count();
        let restarts = a
            .iter()
            .filter(|(_, f)| matches!(f, Fault::Restart(_)))
            .count();
        let partitions = a
            .iter()
            .filter(|(_, f)| matches!(f, Fault::Partition(_)))
            .count();
        let heals = a.iter().filter(|(_, f)| matches!(f, Fault::Heal)).count();
        assert_eq!(crashes, restarts);
        assert_eq!(partitions, heals);
        assert!(crashes > 0 && partitions > 0);
        assert!(a.iter().any(|(_, f)| matches!(f, Fault::Pause { .. })));
        // Some crashes are a failed disk first; each is followed by a crash.
        let disk_failures = a
            .iter()
            .filter(|(_, f)| matches!(f, Fault::DiskFails(_)))
            .count();
        assert!(disk_failures > 0 && disk_failures < crashes);
        // Both minority and majority outages happen.
        let isolated_majority = a.iter().any(|(_, f)| {
            matches!(f, Fault::Partition(Partition::Groups(g)) if g.iter().all(|g| g.len() < 3))
        });
        assert!(isolated_majority);
        assert!(a.iter().all(|(t, _)| *t < 20_000 + config.epoch_ms_max));
    }

    #[test]
    fn mid_send_crashes_are_drawn_after_everything_else() {
        let config = FaultConfig::default();
        let plain = schedule(&singletons(5), 8_000, &config, &mut SplitMix64::new(7));
        let sharp = FaultConfig {
            mid_send_crashes: 10,
            mid_send_downtime_ms: (1, 3),
            ..config
        };
        let with = schedule(&singletons(5), 8_000, &sharp, &mut SplitMix64::new(7));
        // Runs without them keep their schedule: the other faults are drawn first.
        let others: Vec<_> = with
            .iter()
            .filter(|(_, f)| !matches!(f, Fault::CrashMidSend { .. }))
            .cloned()
            .collect();
        assert_eq!(others, plain);
        let mid: Vec<_> = with
            .iter()
            .filter_map(|(t, f)| match f {
                Fault::CrashMidSend {
                    node, downtime_ms, ..
                } => Some((*t, *node, *downtime_ms)),
                _ => None,
            })
            .collect();
        assert_eq!(mid.len(), 10);
        assert!(mid.iter().all(|&(t, node, down)| (300..=8_000).contains(&t)
            && node < 5
            && (1..=3).contains(&down)));
    }

    /// Processes of several shards: each crashes, restarts and pauses as a whole, at one
    /// instant, and no partition separates two shards of one process.
    #[test]
    fn process_faults_take_every_shard_at_once() {
        let processes = vec![vec![0, 1, 2], vec![3], vec![4, 5], vec![6, 7, 8], vec![9]];
        let process_of = |node: NodeIndex| processes.iter().position(|p| p.contains(&node));
        let config = FaultConfig::default();
        let (mut crashes, mut pauses, mut partitions) = (0, 0, 0);
        for seed in 0..20 {
            let faults = schedule(&processes, 20_000, &config, &mut SplitMix64::new(seed));
            for (at, fault) in &faults {
                let whole = |node: &NodeIndex, same: &dyn Fn(&Fault, NodeIndex) -> bool| {
                    let p = process_of(*node).expect("a process");
                    processes[p]
                        .iter()
                        .all(|&s| faults.iter().any(|(t, other)| t == at && same(other, s)))
                };
                match fault {
                    Fault::Crash(node) => {
                        crashes += 1;
                        assert!(whole(node, &|f, s| *f == Fault::Crash(s)), "{faults:?}");
                    }
                    Fault::Restart(node) => {
                        assert!(whole(node, &|f, s| *f == Fault::Restart(s)), "{faults:?}");
                    }
                    Fault::Pause { node, ms } => {
                        pauses += 1;
                        let ms = *ms;
                        assert!(whole(node, &|f, s| *f == Fault::Pause { node: s, ms }));
                    }
                    Fault::Partition(partition) => {
                        partitions += 1;
                        let sides: Vec<Vec<NodeIndex>> = match partition {
                            Partition::Groups(groups) => groups.clone(),
                            Partition::Bridge {
                                left,
                                bridge,
                                right,
                            } => {
                                let p = process_of(*bridge).expect("a process");
                                assert!(processes[p]
                                    .iter()
                                    .all(|s| !left.contains(s) && !right.contains(s)));
                                vec![left.clone(), right.clone()]
                            }
                            Partition::OneWay { from, to } => vec![from.clone(), to.clone()],
                        };
                        for side in &sides {
                            for node in side {
                                let p = process_of(*node).expect("a process");
                                assert!(
                                    processes[p].iter().all(|s| side.contains(s)),
                                    "{partition:?}"
                                );
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        assert!(crashes > 0 && pauses > 0 && partitions > 0);
    }

    #[test]
    fn samples_are_distinct() {
        let mut rng = SplitMix64::new(1);
        for k in 0..=5 {
            let mut s = sample(5, k, &mut rng);
            s.sort();
            s.dedup();
            assert_eq!(s.len(), k);
        }
    }
}

//! The fault schedule: drawn up front from the seed, in epochs.
//!
//! Each epoch picks a scenario (calm, partition, crashes, pauses, or a crash plus a
//! partition; some crashes are a failed disk first, the node running on silently until
//! the power cut) and how many nodes it hurts: usually a minority (the cluster must keep
//! serving), sometimes a majority (it must refuse, `Unavailable`, without losing or
//! inventing writes). Everything is undone at the epoch's end.

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

/// The faults of a run of `duration_ms` over `n` nodes, as `(time, fault)` sorted by
/// time. Every fault is undone by the end of its epoch, at most `epoch_ms_max` after
/// `duration_ms`.
pub fn schedule(
    n: usize,
    duration_ms: u64,
    config: &FaultConfig,
    rng: &mut SplitMix64,
) -> Vec<(u64, Fault)> {
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
                    out.push((t, Fault::Partition(partition_of(n, &faulty, rng))));
                    out.push((end, Fault::Heal));
                }
                1 => {
                    for &f in &faulty {
                        if rng.chance(config.disk_failure_pct) {
                            out.push((t + offset(rng), Fault::DiskFails(f)));
                            out.push((end, Fault::Crash(f)));
                        } else {
                            out.push((t + offset(rng), Fault::Crash(f)));
                        }
                        out.push((end, Fault::Restart(f)));
                    }
                }
                2 => {
                    for &f in &faulty {
                        let ms = rng.range(len / 2, len);
                        out.push((t + offset(rng), Fault::Pause { node: f, ms }));
                    }
                }
                _ => {
                    // One crash plus a partition of (some of) the others.
                    let crashed = faulty[0];
                    out.push((t + offset(rng), Fault::Crash(crashed)));
                    out.push((end, Fault::Restart(crashed)));
                    let cut = sample(n, 1, rng);
                    out.push((t, Fault::Partition(partition_of(n, &cut, rng))));
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
            let node = rng.below(n as u64) as usize;
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
        let a = schedule(5, 20_000, &config, &mut SplitMix64::new(3));
        let b = schedule(5, 20_000, &config, &mut SplitMix64::new(3));
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
        let plain = schedule(5, 8_000, &config, &mut SplitMix64::new(7));
        let sharp = FaultConfig {
            mid_send_crashes: 10,
            mid_send_downtime_ms: (1, 3),
            ..config
        };
        let with = schedule(5, 8_000, &sharp, &mut SplitMix64::new(7));
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

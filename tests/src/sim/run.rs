//! One seed, start to verdict: workload under faults; heal and measure convergence;
//! restart every node from its disk; read every key back; check every key's history.

use super::api::{Hardware, Holders, Request};
use super::world::MembershipCounts;
use super::config::SimConfig;
use super::error::SimError;
use super::workload::{key, OpCounts};
use super::world::World;
use crate::checker::{check_key, CheckOptions, Operation, Outcome, Verdict, Violation};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// The workload's own history is not linearizable.
    Violation,
    /// The workload's history is, but not with the post-heal read added: an
    /// acknowledged write was lost (or a failed one resurrected).
    LostAcked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    pub violation: Violation,
    /// The last trace lines about the key within the violation's time window.
    pub trace: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    pub seed: u64,
    /// Keys whose history was checked.
    pub histories: usize,
    pub counts: OpCounts,
    pub findings: Vec<Finding>,
    /// Keys the checker could not decide (too large or over budget).
    pub inconclusive: usize,
    /// Keys that a healthy cluster failed to read back after the run.
    pub verify_failures: usize,
    /// From the heal at the end of the workload until every key's replicas agreed (and
    /// no request was in flight); `None` if not within the cap.
    pub converge_ms: Option<u64>,
    pub trace_hash: u64,
    pub events: u64,
    pub membership: MembershipCounts,
}

impl SeedReport {
    pub fn violations(&self) -> usize {
        self.count(FindingKind::Violation)
    }

    pub fn lost_acked(&self) -> usize {
        self.count(FindingKind::LostAcked)
    }

    fn count(&self, kind: FindingKind) -> usize {
        self.findings.iter().filter(|f| f.kind == kind).count()
    }

    /// Whether this seed shows a bug.
    pub fn failed(&self) -> bool {
        !self.findings.is_empty() || self.verify_failures > 0 || self.counts.protocol_errors > 0
    }

    /// The seed, every finding with its ops and trace, and how to rerun it.
    pub fn render_failure(&self) -> String {
        let mut out = format!(
            "seed {} FAILED: {} violation(s), {} lost acknowledged write(s), {} unreadable key(s), {} protocol error(s)\n  rerun: sim --start {} --seeds 1 --trace (with the same --impl and --nodes)\n",
            self.seed,
            self.violations(),
            self.lost_acked(),
            self.verify_failures,
            self.counts.protocol_errors,
            self.seed
        );
        for f in &self.findings {
            out.push_str(&format!("  [{:?}] {}", f.kind, f.violation.explanation));
            out.push_str("  trace of the key and of faults in that window (ms):\n");
            for line in &f.trace {
                out.push_str(&format!("    {line}\n"));
            }
        }
        out
    }
}

/// Whether every key's replicas hold the same version (or no replica holds any). With
/// membership changes, the replicas are the key's in the settled layout (others, e.g.
/// a node that left, may keep old copies).
fn converged<H: Hardware>(world: &World<H>) -> Result<bool, SimError> {
    for k in 0..world.config.workload.keys {
        let key = key(k);
        let (nodes, needed) = match world.holders(&key) {
            Holders::Unsettled => return Ok(false),
            Holders::Any => ((0..world.node_count()).collect::<Vec<_>>(), world.hw.replicas()),
            Holders::Only(nodes) => {
                let needed = nodes.len();
                (nodes, needed)
            }
        };
        let mut versions = Vec::new();
        for i in nodes {
            if let Some(v) = world.hw.replica_version(i, &key)? {
                versions.push(v);
            }
        }
        let agree = versions.windows(2).all(|w| w[0] == w[1]);
        if !(versions.is_empty() || (agree && versions.len() >= needed)) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reads every key back through a random node, retrying while the cluster settles.
/// Returns the number of keys that could not be read.
fn verify<H: Hardware>(world: &mut World<H>) -> Result<usize, SimError> {
    let mut failures = 0;
    for k in 0..world.config.workload.keys {
        let key = key(k);
        let mut read = false;
        for attempt in 0..world.config.verify_attempts as usize {
            // Keys start at different nodes; a retry goes to the next node.
            let node = (k + attempt) % world.node_count();
            let stamp = world.stamp();
            let id = world.workload.verify_read(&key, stamp);
            world.submit(node, id, Request::Get { key: key.clone() });
            let deadline = world.now + world.workload.config().client_timeout_ms;
            while world.workload.is_pending(id) && world.now <= deadline {
                world.run_until(world.now + 5)?;
            }
            if matches!(
                world.workload.outcome_of_last_verify(),
                Some(Outcome::Ok { .. })
            ) {
                read = true;
                break;
            }
            world.run_until(world.now + world.config.verify_retry_ms)?;
        }
        if !read {
            failures += 1;
        }
    }
    Ok(failures)
}

fn finding<H: Hardware>(world: &World<H>, kind: FindingKind, v: Violation) -> Finding {
    let (start, end) = v.window();
    let lines = world.trace.about(
        &v.key,
        start / 1000,
        end / 1000,
        world.config.trace_lines_shown,
    );
    Finding {
        kind,
        trace: lines.iter().map(|l| l.to_string()).collect(),
        violation: v,
    }
}

/// Runs seed `seed` on `hw` and checks it.
pub fn run_seed<H: Hardware>(hw: H, config: &SimConfig, seed: u64) -> Result<SeedReport, SimError> {
    let mut world = World::new(hw, config.clone(), seed)?;
    world.run_until(config.workload_ms)?;

    // Heal, then measure until every key's replicas agree, once the requests still in
    // flight have finished or timed out.
    world.heal()?;
    let healed_at = world.now;
    let mut converge_ms = None;
    while world.now <= healed_at + config.converge_cap_ms {
        if !world.workload.has_pending() && converged(&world)? {
            converge_ms = Some(world.now - healed_at);
            break;
        }
        world.run_until(world.now + 10)?;
    }
    let drain_until = world.now + config.workload.client_timeout_ms;
    while world.workload.has_pending() && world.now <= drain_until {
        world.run_until(world.now + 10)?;
    }
    world.finish_membership();

    // Restart every node from its disk (power loss): acknowledged writes must survive,
    // and a read of every key must see them.
    for i in 0..world.node_count() {
        world.crash(i);
        world.boot(i)?;
    }
    let verify_failures = verify(&mut world)?;

    let options = CheckOptions {
        time_scale: 1000,
        ..CheckOptions::default()
    };
    let mut findings = Vec::new();
    let mut inconclusive = 0;
    for k in 0..config.workload.keys {
        let key = key(k);
        let of_key = |include_verify: bool| -> Vec<Operation> {
            let history = &world.workload.history;
            (0..history.len())
                .filter(|i| include_verify || !world.workload.verify_reads.contains(i))
                .filter(|&i| history[i].key == key)
                .map(|i| history[i].clone())
                .collect()
        };
        match check_key(&of_key(false), &options) {
            Verdict::Violation(v) => findings.push(finding(&world, FindingKind::Violation, *v)),
            Verdict::Unknown(_) => inconclusive += 1,
            Verdict::Linearizable => match check_key(&of_key(true), &options) {
                Verdict::Violation(v) => {
                    findings.push(finding(&world, FindingKind::LostAcked, *v));
                }
                Verdict::Unknown(_) => inconclusive += 1,
                Verdict::Linearizable => {}
            },
        }
    }
    Ok(SeedReport {
        seed,
        histories: config.workload.keys,
        counts: world.workload.counts,
        findings,
        inconclusive,
        verify_failures,
        converge_ms,
        trace_hash: world.trace.hash(),
        events: world.events(),
        membership: world.membership,
    })
}

//! One seed, start to verdict: workloads under faults; heal and measure convergence;
//! restart every node from its disk; read every key back; check every key's history;
//! wait for hints to be handed off and check every set key holds its acknowledged
//! elements; and, all along, that every node agrees on what each layout version is
//! (`layouts.rs`).

use super::api::{Change, Hardware, Holders, NodeIndex, Request, SimNode};
use super::config::SimConfig;
use super::error::SimError;
use super::layouts::LayoutFinding;
use super::scans::{self, ScanCounts};
use super::sets::{set_key, Element, ElementOutcome, Merged, SetCounts};
use super::workload::{key, OpCounts};
use super::world::MembershipCounts;
use super::world::World;
use crate::checker::{check_key, show_bytes, CheckOptions, Operation, Outcome, Verdict, Violation};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetFindingKind {
    /// After the heal and hint handoff, a read of the set lacks elements whose writes
    /// were acknowledged.
    LostAckedElements,
    /// A read (during the run or after) returned an element never attempted on the
    /// key, a tombstone or a value that is not a set: nobody wrote it.
    UnattemptedElements,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetFinding {
    pub kind: SetFindingKind,
    pub key: Vec<u8>,
    /// The elements concerned (lost ones; or unattempted ones, if they are elements).
    pub elements: Vec<u64>,
    pub explanation: String,
    /// Trace lines of the key (and faults): around the first element's write and the
    /// final read.
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
    /// The set workload's requests (all zero where it does not run).
    pub set_counts: SetCounts,
    /// Acknowledged elements the final reads of the sets lacked.
    pub set_elements_lost: u64,
    pub set_findings: Vec<SetFinding>,
    /// Whether, before the sets were read, some node still held hints or did not see
    /// every peer alive (after `SetConfig::settle_cap_ms`).
    pub set_unsettled: bool,
    /// Layout versions that named two layouts on different nodes (`layouts.rs`).
    pub layout_findings: Vec<LayoutFinding>,
    /// Delete-heavy seeds: register tombstones of the workload keys that members still
    /// held when the purge settle ended (0 expected); `None`: not checked.
    pub tombstones_left: Option<u64>,
    pub trace_hash: u64,
    pub events: u64,
    pub membership: MembershipCounts,
    /// Processes of two or more shards in this seed (0 outside the shard mix), and
    /// their whole-process power losses (`SimConfig::shards_every`).
    pub shard_processes: usize,
    pub process_crashes: u64,
    /// The scan mix's pages and scans (all zero outside it), and what the completed
    /// scans got wrong against the register history (`scans.rs`).
    pub scan_counts: ScanCounts,
    pub scan_findings: Vec<String>,
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
        !self.findings.is_empty()
            || !self.set_findings.is_empty()
            || !self.layout_findings.is_empty()
            || self.verify_failures > 0
            || self.counts.protocol_errors > 0
            || self.set_counts.protocol_errors > 0
            || self.tombstones_left.is_some_and(|left| left > 0)
            || !self.scan_findings.is_empty()
            || self.scan_counts.protocol_errors > 0
    }

    /// The seed, every finding with its ops and trace, and how to rerun it.
    pub fn render_failure(&self) -> String {
        let mut out = format!(
            "seed {} FAILED: {} violation(s), {} lost acknowledged write(s), {} lost acknowledged set element(s), {} layout conflict(s), {} unreadable key(s), {} protocol error(s)\n  rerun: sim --start {} --seeds 1 --trace (with the same --impl, --mutation, profile and --nodes)\n",
            self.seed,
            self.violations(),
            self.lost_acked(),
            self.set_elements_lost,
            self.layout_findings.len(),
            self.verify_failures,
            self.counts.protocol_errors + self.set_counts.protocol_errors,
            self.seed
        );
        // A failure the header does not count.
        if let Some(left) = self.tombstones_left.filter(|&left| left > 0) {
            out.push_str(&format!(
                "  {left} tombstone(s) of workload keys left after the purge settle\n"
            ));
        }
        for f in &self.findings {
            out.push_str(&format!("  [{:?}] {}", f.kind, f.violation.explanation));
            out.push_str("  trace of the key and of faults in that window (ms):\n");
            for line in &f.trace {
                out.push_str(&format!("    {line}\n"));
            }
        }
        for f in &self.set_findings {
            out.push_str(&format!("  [{:?}] {}\n", f.kind, f.explanation));
            for line in &f.trace {
                out.push_str(&format!("    {line}\n"));
            }
        }
        for f in &self.scan_findings {
            out.push_str(&format!("  [Scan] {f}\n"));
        }
        if self.scan_counts.protocol_errors > 0 {
            out.push_str(&format!(
                "  [Scan] {} page(s) answered with the wrong kind of reply or a cursor that did not move forward\n",
                self.scan_counts.protocol_errors
            ));
        }
        for f in &self.layout_findings {
            out.push_str(&format!(
                "  [LayoutConflict] {}\n",
                f.conflict.explanation()
            ));
            out.push_str("  faults and membership messages up to the second layout (ms):\n");
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
/// Register tombstones of the workload keys held by nodes that purge (members of
/// their committed layout).
fn tombstones_held<H: Hardware>(world: &World<H>) -> Result<u64, SimError> {
    let mut held = 0;
    for i in 0..world.node_count() {
        if world.node(i).and_then(|node| node.purge_floor()).is_none() {
            continue;
        }
        for k in 0..world.config.workload.keys {
            held += u64::from(world.hw.tombstone_tag(i, &key(k))?.is_some());
        }
    }
    Ok(held)
}

/// `index`'s version of `key` as convergence sees it: a tombstone at or below the
/// node's purge floor is purged or about to be, the same as nothing.
fn visible_version<H: Hardware>(
    world: &World<H>,
    index: NodeIndex,
    key: &[u8],
) -> Result<Option<Vec<u8>>, SimError> {
    let floor = world.node(index).and_then(|node| node.purge_floor());
    if let (Some(floor), Some(tag)) = (floor, world.hw.tombstone_tag(index, key)?) {
        if tag <= floor {
            return Ok(None);
        }
    }
    world.hw.replica_version(index, key)
}

fn converged<H: Hardware>(world: &World<H>) -> Result<bool, SimError> {
    for k in 0..world.config.workload.keys {
        let key = key(k);
        let (nodes, needed) = match world.holders(&key) {
            Holders::Unsettled => return Ok(false),
            Holders::Any => (
                (0..world.node_count()).collect::<Vec<_>>(),
                world.hw.replicas(),
            ),
            Holders::Only(nodes) => {
                let needed = nodes.len();
                (nodes, needed)
            }
        };
        let mut versions = Vec::new();
        for i in nodes {
            if let Some(v) = visible_version(world, i, &key)? {
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

/// After the heal, with machines lost for good: waits for a change still pending to
/// end (a dead joiner's is aborted after `change_timeout_ms`, unless it may have synced;
/// then, after twice that, the operator force-removes the lost joiner, which declares
/// it gone), then force-removes each lost machine still in the layout through a live
/// member (asked again every two seconds while refused), until the layout has none
/// and nothing pending, or `lost_settle_ms`. What is left unsettled shows as a seed
/// that does not converge.
fn settle_lost<H: Hardware>(world: &mut World<H>) -> Result<(), SimError> {
    let lost = world.lost();
    if lost.is_empty() {
        return Ok(());
    }
    let until = world.now + world.config.lost_settle_ms;
    let mut next_ask = world.now;
    let patience_ms = world.config.change_timeout_ms * 2 + 2_000;
    let mut pending_since = None;
    while world.now <= until {
        let nodes: Vec<Option<&H::Node>> = (0..world.node_count()).map(|i| world.node(i)).collect();
        let Some((members, pending)) = world.hw.layout_members(&nodes) else {
            break;
        };
        let in_layout: Vec<NodeIndex> = lost
            .iter()
            .copied()
            .filter(|i| members.contains(i))
            .collect();
        if !pending && in_layout.is_empty() {
            break;
        }
        let since = *pending_since.get_or_insert(world.now);
        if !pending {
            pending_since = None;
        }
        let stuck = pending && world.now >= since + patience_ms;
        if stuck && world.now >= next_ask {
            let live = members.iter().copied().find(|i| world.is_up(*i));
            if let Some(to) = live {
                for gone in &lost {
                    world.request_change(to, Change::ForceRemove(*gone));
                }
            }
            next_ask = world.now + 2_000;
        }
        if !pending && world.now >= next_ask {
            let live = members.iter().copied().find(|i| world.is_up(*i));
            if let (Some(to), Some(gone)) = (live, in_layout.first()) {
                world.request_change(to, Change::ForceRemove(*gone));
            }
            next_ask = world.now + 2_000;
        }
        world.run_until(world.now + 50)?;
    }
    Ok(())
}

/// Reads every key back through a random node, retrying while the cluster settles.
/// Returns the number of keys that could not be read.
fn verify<H: Hardware>(world: &mut World<H>) -> Result<usize, SimError> {
    let mut failures = 0;
    for k in 0..world.config.workload.keys {
        let key = key(k);
        let mut read = false;
        for attempt in 0..world.config.verify_attempts as usize {
            // Keys start at different nodes; a retry goes to the next node (one that
            // is not lost for good).
            let node = (k + attempt) % world.node_count();
            if world.is_lost(node) {
                continue;
            }
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
    if world.config.verify_through_every_node {
        for k in 0..world.config.workload.keys {
            let key = key(k);
            let live: Vec<usize> = (0..world.node_count())
                .filter(|i| !world.is_lost(*i))
                .collect();
            for node in live {
                read_once(world, node, &key)?;
            }
        }
    }
    Ok(failures)
}

/// One verification read of `key` through `node`, waited for (its outcome, whatever
/// it is, joins the history).
fn read_once<H: Hardware>(world: &mut World<H>, node: usize, key: &[u8]) -> Result<(), SimError> {
    let stamp = world.stamp();
    let id = world.workload.verify_read(key, stamp);
    world.submit(node, id, Request::Get { key: key.to_vec() });
    let deadline = world.now + world.workload.config().client_timeout_ms;
    while world.workload.is_pending(id) && world.now <= deadline {
        world.run_until(world.now + 5)?;
    }
    Ok(())
}

/// Whether every node is up, holds no hints and believes every peer alive: an eventual
/// read then goes to the key's owners only, and they hold everything handed off.
fn eventual_settled<H: Hardware>(world: &World<H>) -> bool {
    (0..world.node_count())
        .filter(|i| !world.is_lost(*i))
        .all(|i| {
            world
                .node(i)
                .is_some_and(|n| n.hints_held() == 0 && n.members_not_alive() == 0)
        })
}

/// Whether every set key's replicas (in the settled layout) hold the same state:
/// anti-entropy over eventual keys has spread every write, with no read's help.
fn sets_converged<H: Hardware>(world: &World<H>) -> Result<bool, SimError> {
    for k in 0..world.sets.config().keys {
        let key = set_key(k);
        let nodes = match world.holders(&key) {
            Holders::Unsettled => return Ok(false),
            Holders::Any => (0..world.node_count()).collect::<Vec<_>>(),
            Holders::Only(nodes) => nodes,
        };
        let mut states = Vec::with_capacity(nodes.len());
        for i in nodes {
            states.push(world.hw.eventual_version(i, &key)?);
        }
        if states.windows(2).any(|w| w[0] != w[1]) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Runs until the cluster is [`eventual_settled`] and its set keys' replicas agree
/// ([`sets_converged`]) with no request in flight, at most `settle_cap_ms`. Returns
/// whether it settled.
fn settle_for_sets<H: Hardware>(world: &mut World<H>) -> Result<bool, SimError> {
    let until = world.now + world.config.sets.settle_cap_ms;
    loop {
        if !world.clients_pending() && eventual_settled(world) && sets_converged(world)? {
            return Ok(true);
        }
        if world.now >= until {
            return Ok(false);
        }
        world.run_until(world.now + 10)?;
    }
}

/// Reads set key `k` with eventual gets, retrying reads that fail (a node that just
/// restarted may still believe its peers dead). The merged answer and when its read
/// was issued, or `None` if no read answered.
fn read_set<H: Hardware>(
    world: &mut World<H>,
    k: usize,
) -> Result<Option<(Merged, u64)>, SimError> {
    for attempt in 0..world.config.verify_attempts as usize {
        let node = (k + attempt) % world.node_count();
        let issued_ms = world.now;
        let (id, request) = world.sets.verify_read(k);
        world.submit(node, id, request);
        let deadline = world.now + world.workload.config().client_timeout_ms;
        while world.sets.is_pending(id) && world.now <= deadline {
            world.run_until(world.now + 5)?;
        }
        if let Some(merged) = world.sets.last_verify() {
            return Ok(Some((merged.clone(), issued_ms)));
        }
        world.run_until(world.now + world.config.verify_retry_ms)?;
    }
    Ok(None)
}

/// What the set check found: lost acknowledged elements, findings, unreadable keys.
struct SetVerdict {
    lost: u64,
    findings: Vec<SetFinding>,
    unreadable: usize,
    unsettled: bool,
}

fn show_elements(elements: &[u64]) -> String {
    const SHOWN: usize = 12;
    let mut parts: Vec<String> = elements.iter().take(SHOWN).map(u64::to_string).collect();
    if elements.len() > SHOWN {
        parts.push(format!("... ({} more)", elements.len() - SHOWN));
    }
    parts.join(", ")
}

/// After the heal: waits for hints to drain, reads every set key, and checks that each
/// holds every acknowledged element and nothing never attempted.
fn verify_sets<H: Hardware>(world: &mut World<H>) -> Result<SetVerdict, SimError> {
    let mut verdict = SetVerdict {
        lost: 0,
        findings: Vec::new(),
        unreadable: 0,
        unsettled: false,
    };
    if world.sets.clients() == 0 {
        return Ok(verdict);
    }
    verdict.unsettled = !settle_for_sets(world)?;
    let shown = world.config.trace_lines_shown;
    for k in 0..world.sets.config().keys {
        let key = set_key(k);
        let Some((merged, read_ms)) = read_set(world, k)? else {
            verdict.unreadable += 1;
            continue;
        };
        let lost: Vec<(u64, Element)> = world
            .sets
            .acked(k)
            .into_iter()
            .filter(|(e, _)| !merged.elements.contains(e))
            .collect();
        let Some(&(first, element)) = lost.first() else {
            continue;
        };
        verdict.lost += lost.len() as u64;
        let acked_ms = match element.outcome {
            ElementOutcome::Acked(at) => at,
            _ => element.invoke_ms,
        };
        let ids: Vec<u64> = lost.iter().map(|(e, _)| *e).collect();
        let explanation = format!(
            "set {}: {} of {} acknowledged element(s) missing after the heal and hint \
             handoff: {}\n  element {first} was written by req{} [{} ms, acknowledged {} ms]; \
             the final read (issued {read_ms} ms) returned {} element(s){}{}\n  \
             before that read every node {} no hints and saw every peer alive",
            show_bytes(&key),
            lost.len(),
            world.sets.acked(k).len(),
            show_elements(&ids),
            element.request,
            element.invoke_ms,
            acked_ms,
            merged.elements.len(),
            if merged.foreign.is_empty() {
                ""
            } else {
                " and "
            },
            merged.foreign.join(", "),
            if verdict.unsettled {
                "had NOT yet reached (settle cap passed):"
            } else {
                "held"
            },
        );
        let mut trace = vec![format!("-- the write of element {first}:")];
        let write_lines = world
            .trace
            .about(&key, element.invoke_ms, acked_ms, shown / 2);
        trace.extend(write_lines.iter().map(|l| l.to_string()));
        trace.push("-- the final read:".to_string());
        let read_lines = world.trace.about(&key, read_ms, world.now, shown / 2);
        trace.extend(read_lines.iter().map(|l| l.to_string()));
        verdict.findings.push(SetFinding {
            kind: SetFindingKind::LostAckedElements,
            key,
            elements: ids,
            explanation,
            trace,
        });
    }
    // Everything any read returned that was never attempted on its key.
    for k in 0..world.sets.config().keys {
        let seen: Vec<_> = world
            .sets
            .unattempted
            .iter()
            .filter(|u| u.key == k)
            .cloned()
            .collect();
        let Some(first) = seen.first() else {
            continue;
        };
        let key = set_key(k);
        let what: Vec<String> = seen.iter().map(|u| u.what.clone()).collect();
        let elements = seen
            .iter()
            .filter_map(|u| u.what.strip_prefix("element ")?.parse().ok())
            .collect();
        let lines = world
            .trace
            .about(&key, first.at_ms.saturating_sub(100), first.at_ms, shown);
        verdict.findings.push(SetFinding {
            kind: SetFindingKind::UnattemptedElements,
            explanation: format!(
                "set {}: reads returned what no client wrote to it: {} (first at {} ms)",
                show_bytes(&key),
                what.join(", "),
                first.at_ms
            ),
            key,
            elements,
            trace: lines.iter().map(|l| l.to_string()).collect(),
        });
    }
    Ok(verdict)
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
    let config = &config.for_hardware(seed, hw.supports_processes());
    let mut world = World::new(hw, config.clone(), seed)?;
    world.run_until(config.workload_ms)?;

    // Heal, then measure until every key's replicas agree, once the requests still in
    // flight have finished or timed out.
    world.heal()?;
    settle_lost(&mut world)?;
    // Counted before the final restarts (node counters live in memory).
    let nodes: Vec<Option<&H::Node>> = (0..world.node_count()).map(|i| world.node(i)).collect();
    world.membership.aborted = world.hw.changes_aborted(&nodes);
    let healed_at = world.now;
    let mut converge_ms = None;
    while world.now <= healed_at + config.converge_cap_ms {
        if !world.clients_pending() && converged(&world)? {
            converge_ms = Some(world.now - healed_at);
            break;
        }
        world.run_until(world.now + 10)?;
    }
    let drain_until = world.now + config.workload.client_timeout_ms;
    while world.clients_pending() && world.now <= drain_until {
        world.run_until(world.now + 10)?;
    }
    world.finish_membership();

    // Restart every node from its disk (power loss): acknowledged writes must survive,
    // and a read of every key must see them.
    let live: Vec<NodeIndex> = (0..world.node_count())
        .filter(|i| !world.is_lost(*i))
        .collect();
    for i in live {
        world.crash(i);
        world.boot(i)?;
    }
    // Delete-heavy seeds: every member's tombstones must be purged (and the reads
    // below then show no deleted value back).
    let mut tombstones_left = None;
    if config.delete_heavy(seed) {
        let settle_from = world.now;
        let mut left = tombstones_held(&world)?;
        while left > 0 && world.now <= settle_from + config.purge_settle_ms {
            world.run_until(world.now + 10)?;
            left = tombstones_held(&world)?;
        }
        tombstones_left = Some(left);
    }
    let verify_failures = verify(&mut world)?;
    // Sets: once hints are handed off and every node sees its peers, every
    // acknowledged element must be in a read of its set.
    let sets = verify_sets(&mut world)?;

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
    let keys: Vec<Vec<u8>> = (0..config.workload.keys).map(key).collect();
    let scan_findings = scans::check(&world.workload.history, &keys, &world.scans.completed);
    Ok(SeedReport {
        seed,
        histories: config.workload.keys,
        counts: world.workload.counts,
        findings,
        inconclusive,
        verify_failures: verify_failures + sets.unreadable,
        converge_ms,
        set_counts: world.sets.counts,
        set_elements_lost: sets.lost,
        set_findings: sets.findings,
        set_unsettled: sets.unsettled,
        layout_findings: world
            .layouts
            .conflicts()
            .iter()
            .map(|c| LayoutFinding::new(c, &world.trace, config.trace_lines_shown))
            .collect(),
        tombstones_left,
        trace_hash: world.trace.hash(),
        events: world.events(),
        membership: world.membership,
        shard_processes: world.shard_processes.len(),
        process_crashes: world.process_crashes,
        scan_counts: world.scans.counts,
        scan_findings,
    })
}

//! Learning a layout from the cluster without taking any one member's word for it.
//!
//! A node keeps the last [`LayoutReport`] each member sent it, as itself (hosts
//! authenticate senders: native peers by the cluster secret, relayed replicas by their
//! host). From those it adopts, one step at a time:
//!
//! 1. **A newer committed layout K** once a majority of the members of its own
//!    committed layout report K as their committed layout. (While it has K pending, a
//!    majority of K's own members reporting it committed also does.) A node with no
//!    layout yet (joining) has nothing to anchor on: it takes K's own members.
//! 2. **The change in progress L** (version committed + 1) once a majority of its
//!    committed layout's members report L pending, or voted for L in one Paxos ballot:
//!    a majority of same-ballot votes is exactly "chosen", and a member that adopted L
//!    did so on the same evidence. Its own vote counts.
//! 3. **A member `y`'s claim to be synced** only on `y`'s own report (pending L with
//!    `y` among its claims): a member vouches for itself only. The claim is then
//!    *established* (`y` synced) once a majority of the committed layout's members
//!    report holding it, this node included (`LayoutHistory::stabilize`), and the
//!    commit of L follows from the synced set (`LayoutHistory::mark_synced`).
//! 4. **A member's fence of L** likewise only on its own report (pending L, or L
//!    already aborted by it: committed = the abort layout, its fence still held). The
//!    abort then follows from the fences (`LayoutHistory::mark_fenced`).
//!
//! So one member, a modified browser replica say, can make no node adopt a layout: it
//! takes a majority of a layout's members to report the same thing, which is the
//! majority that chose it. The limit: a node whose committed layout's members are
//! mostly gone (removed and stopped while it was down) cannot confirm anything newer;
//! it stays behind (its status says so) until removed and rejoined.

use std::collections::{BTreeMap, BTreeSet};

use crate::protocol::{Ballot, LayoutReport};
use crate::ring::history::Fence;
use crate::ring::{LayoutHistory, NodeId, RingLayout};

/// Steps one confirmation may take (each adopts a newer layout or a synced member).
const STEPS_MAX: usize = 64;

/// `mine` plus what `reports` confirm, or `None` if they confirm nothing new.
/// `own_vote`: this node's Paxos vote, `(version, ballot, layout)`.
pub(crate) fn confirm(
    mine: &LayoutHistory,
    me: NodeId,
    own_vote: Option<&(u64, Ballot, RingLayout)>,
    reports: &BTreeMap<NodeId, LayoutReport>,
) -> Option<LayoutHistory> {
    let mut next = mine.clone();
    let mut changed = false;
    for _ in 0..STEPS_MAX {
        if let Some(committed) = confirmed_committed(&next, reports) {
            if next.aborted_layout().as_ref() == Some(&committed) {
                // The pending change was aborted: this node's fences go along.
                if let Some(aborted) = next.learned_aborted() {
                    next = aborted;
                    changed = true;
                    continue;
                }
            }
            // What this node knows of its own sync for that change goes along.
            let mine = next.pending() == Some(&committed) && next.claims().contains(&me);
            let by = if mine {
                BTreeSet::from([me])
            } else {
                BTreeSet::new()
            };
            next = LayoutHistory::committed_by_members(committed, by);
            changed = true;
            continue;
        }
        if next.pending().is_none() && next.committed().version() > 0 {
            if let Some(pending) = confirmed_pending(&next, me, own_vote, reports) {
                // `begin` cannot fail: the candidate follows the committed version.
                if next.begin(pending).is_ok() {
                    changed = true;
                    continue;
                }
            }
        }
        if self_claims(&mut next, me, reports) {
            changed = true;
            continue;
        }
        if established(&mut next, me, reports) {
            changed = true;
            continue;
        }
        if self_fences(&mut next, reports) {
            changed = true;
            continue;
        }
        break;
    }
    changed.then_some(next)
}

fn majority_of(count: usize, of: usize) -> bool {
    of > 0 && count * 2 > of
}

fn reporting(
    voters: &BTreeSet<NodeId>,
    reports: &BTreeMap<NodeId, LayoutReport>,
    says: impl Fn(&LayoutReport) -> bool,
) -> usize {
    voters
        .iter()
        .filter(|id| reports.get(id).is_some_and(&says))
        .count()
}

/// Step 1: a committed layout newer than `next`'s that a majority vouches for.
fn confirmed_committed(
    next: &LayoutHistory,
    reports: &BTreeMap<NodeId, LayoutReport>,
) -> Option<RingLayout> {
    let mine = next.committed();
    let mut candidates: Vec<&RingLayout> = reports
        .values()
        .map(|report| report.history.committed())
        .filter(|layout| layout.version() > mine.version())
        .collect();
    candidates.sort_by_key(|layout| std::cmp::Reverse(layout.version()));
    candidates.dedup();
    for candidate in candidates {
        let says = |report: &LayoutReport| report.history.committed() == candidate;
        let voters: BTreeSet<NodeId> = if mine.version() == 0 {
            candidate.nodes().keys().copied().collect()
        } else {
            mine.nodes().keys().copied().collect()
        };
        if majority_of(reporting(&voters, reports, says), voters.len()) {
            return Some(candidate.clone());
        }
        if next.pending() == Some(candidate) {
            let members: BTreeSet<NodeId> = candidate.nodes().keys().copied().collect();
            if majority_of(reporting(&members, reports, says), members.len()) {
                return Some(candidate.clone());
            }
        }
    }
    None
}

/// Step 2: the layout of version committed + 1 that a majority adopted or voted for.
fn confirmed_pending(
    next: &LayoutHistory,
    me: NodeId,
    own_vote: Option<&(u64, Ballot, RingLayout)>,
    reports: &BTreeMap<NodeId, LayoutReport>,
) -> Option<RingLayout> {
    let committed = next.committed();
    let version = committed.version().checked_add(1)?;
    let voters: BTreeSet<NodeId> = committed.nodes().keys().copied().collect();
    // Adopted it as pending, or already committed it (a change that moves no data
    // commits as soon as it is chosen).
    let adopted = |report: &LayoutReport, layout: &RingLayout| {
        (report.history.committed() == committed && report.history.pending() == Some(layout))
            || report.history.committed() == layout
    };
    let vote_of = |id: &NodeId| -> Option<&(u64, Ballot, RingLayout)> {
        if *id == me {
            own_vote
        } else {
            reports.get(id).and_then(|report| report.vote.as_ref())
        }
    };
    let mut candidates: Vec<&RingLayout> = Vec::new();
    for report in reports.values() {
        if let Some(pending) = report.history.pending() {
            if report.history.committed() == committed {
                candidates.push(pending);
            }
        }
    }
    candidates.extend(voters.iter().filter_map(&vote_of).map(|(_, _, l)| l));
    candidates.retain(|layout| layout.version() == version && is_one_change(committed, layout));
    candidates.sort_by_key(|layout| layout.nodes().keys().copied().collect::<Vec<_>>());
    candidates.dedup();
    for candidate in candidates {
        let mut adopters = 0;
        let mut by_ballot: BTreeMap<Ballot, usize> = BTreeMap::new();
        for id in &voters {
            if reports.get(id).is_some_and(|r| adopted(r, candidate)) {
                adopters += 1;
            } else if let Some((v, ballot, layout)) = vote_of(id) {
                if *v == version && layout == candidate {
                    *by_ballot.entry(*ballot).or_default() += 1;
                }
            }
        }
        let votes = by_ballot.values().copied().max().unwrap_or(0);
        if majority_of(adopters + votes, voters.len()) {
            return Some(candidate.clone());
        }
    }
    None
}

/// Whether `report` (from a member) holds `y`'s claim to be synced for the change from
/// `committed` to `pending`: still pending it with the claim held, or already committed
/// with the claim among those it held then.
fn holds_claim(
    report: &LayoutReport,
    committed: &RingLayout,
    pending: &RingLayout,
    y: NodeId,
) -> bool {
    let history = &report.history;
    let pending_it = history.committed() == committed
        && history.pending() == Some(pending)
        && history.claims().contains(&y);
    pending_it || (history.committed() == pending && history.committed_by().contains(&y))
}

/// Step 3: members of the pending layout that report their own claim to be synced.
fn self_claims(
    next: &mut LayoutHistory,
    me: NodeId,
    reports: &BTreeMap<NodeId, LayoutReport>,
) -> bool {
    let Some(pending) = next.pending().cloned() else {
        return false;
    };
    let committed = next.committed().clone();
    let claims: Vec<NodeId> = reports
        .iter()
        .filter(|(id, report)| {
            pending.node(**id).is_some()
                && !next.claims().contains(id)
                && holds_claim(report, &committed, &pending, **id)
        })
        .map(|(id, _)| *id)
        .collect();
    let mut marked = false;
    for id in claims {
        marked |= next.hold_claim(me, id);
    }
    marked
}

/// Step 3, continued: claims a majority of the committed layout's members hold.
fn established(
    next: &mut LayoutHistory,
    me: NodeId,
    reports: &BTreeMap<NodeId, LayoutReport>,
) -> bool {
    let (Some(pending), committed) = (next.pending().cloned(), next.committed().clone()) else {
        return false;
    };
    next.stabilize(me, |h, y| {
        reports
            .get(&h)
            .is_some_and(|report| holds_claim(report, &committed, &pending, y))
    })
}

/// Step 4: members that report their own fence of the pending change: still pending
/// it, or already aborted with their fence among those that aborted it.
fn self_fences(next: &mut LayoutHistory, reports: &BTreeMap<NodeId, LayoutReport>) -> bool {
    let (Some(pending), Some(aborted)) = (next.pending().cloned(), next.aborted_layout()) else {
        return false;
    };
    let committed = next.committed().clone();
    let fences: Vec<(NodeId, Fence)> = reports
        .iter()
        .filter_map(|(id, report)| {
            let history = &report.history;
            let same = (history.committed() == &committed && history.pending() == Some(&pending))
                || (history.committed() == &aborted && history.pending().is_none());
            let fence = history.fences().get(id).filter(|_| same)?;
            let new = next.fences().get(id).is_none_or(|known| {
                !fence.gone.is_subset(&known.gone) || !fence.excludes.is_subset(&known.excludes)
            });
            new.then(|| (*id, fence.clone()))
        })
        .collect();
    let mut marked = false;
    for (id, fence) in fences {
        marked |= next.mark_fenced(id, fence);
        if next.pending().is_none() {
            break;
        }
    }
    marked
}

/// Whether `next` is `committed` with exactly one member added, removed or changed and
/// nothing else, and no bound member's identity changed, or `committed`'s purge change
/// ([`RingLayout::purged`]): what a membership change may be. Acceptors vote for
/// nothing else and learners adopt nothing else.
pub(crate) fn is_one_change(committed: &RingLayout, next: &RingLayout) -> bool {
    if Some(next.version()) != committed.version().checked_add(1)
        || next.replicas() != committed.replicas()
        || next.vnodes_per_capacity_unit() != committed.vnodes_per_capacity_unit()
    {
        return false;
    }
    // A purge change: the members as they are, the floor exactly `committed.purged()`'s.
    if next.purge_floor() != committed.purge_floor() {
        return committed.purged().is_ok_and(|purged| purged == *next);
    }
    let (a, b) = (committed.nodes(), next.nodes());
    let rebound = a.iter().any(|(id, spec)| {
        spec.identity
            .is_some_and(|identity| b.get(id).is_some_and(|new| new.identity != Some(identity)))
    });
    let changed = a
        .iter()
        .filter(|(id, spec)| b.get(id) != Some(spec))
        .count()
        + b.keys().filter(|id| !a.contains_key(id)).count();
    changed == 1 && !rebound
}

#[cfg(test)]
mod tests;

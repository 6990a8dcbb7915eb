//! Membership over time: the committed layout and at most one change in flight.
//!
//! A change from layout `Lc` (version v) to `Ln` (version v + 1) is chosen once,
//! cluster-wide (single-decree Paxos among `Lc`'s members, `node/membership/`), then
//! spread as this history. While it is pending:
//! - operations use **joint quorums**: a majority of the key's replicas in `Lc` *and*
//!   in `Ln` ([`LayoutHistory::replica_sets`]), so they intersect both the operations
//!   that still run on `Lc` alone and those that already run on `Ln` alone;
//! - every node that gains a range in `Ln` pulls it from a majority of its `Lc` replicas
//!   and then *claims* it is synced.
//!
//! **Claims and synced members.** A node *holds* a member's claim once it heard it from
//! that member itself (`claims`); the claim is *established*, and the member joins
//! `synced`, once a majority of `Lc`'s *other* members hold it
//! ([`LayoutHistory::stabilize`]).
//! `Ln` is committed (and `Lc` forgotten) once, for every range whose replica set
//! changes, a majority of its `Ln` replicas is in `synced`: from then on every value
//! acknowledged on `Lc` is held by a majority of `Ln`. The commit is a pure function of
//! the history, so every node reaches it from the same gossip without another round.
//! Counting a claim only once a majority holds it is what lets the rest learn a commit:
//! a claim that one member heard before the claimant died would let that member commit
//! alone, and the others could then neither learn the commit (it takes a majority of
//! `Lc` reporting it) nor abort (the witness has no change left to fence).
//!
//! `epoch()` (the newest version known) travels in every data message; replicas refuse
//! older ones (`node/membership/`), which fences coordinators that still use `Lc` alone.
//!
//! **Abort.** A change whose new replicas cannot sync (a joiner died for good) would
//! stay pending forever. Any member may *fence* it: from then on it neither syncs for
//! it nor serves its pulls, and its fence names the members it had already served a
//! whole stream to ([`LayoutHistory::mark_fenced`]); members fence as soon as they
//! learn of another's fence. Once the fences prove that some moved range can never get
//! a majority of its new replicas synced ([`LayoutHistory::abort_proven`]), the change
//! is aborted: `Lc` is committed again, renumbered `Ln.version + 1`. Commit and abort
//! are both pure functions of the history and exclude each other. The proofs that a
//! member `y` can never be synced:
//! - *it cannot sync*: a member that synced read whole streams from sources that had
//!   not fenced yet (so their fences name it), and a fenced member never syncs;
//! - *its claim cannot be established*: a fence also names claims its member never held
//!   and promises never to hold (`excludes`: its own if it fenced unsynced, and those of
//!   members it believes dead or holds gone), so once at least half of `Lc`'s members
//!   other than `y` exclude `y`'s claim, no majority of them ever holds it. This is what aborts a
//!   change whose joiner told one member it synced and died. Only dead members' claims
//!   are excluded: excluding a live member's would leave its claim, with one more
//!   member lost, neither held by a majority nor excluded by half.
//!
//! A joiner that died right after it was served whole streams may have synced (and
//! told someone), so the fences alone never abort its change. An operator who knows it
//! is gone for good says so (`ForceRemove` of the joiner): the member asked adds it to
//! its fence's `gone`, and every member that learns of that adds it to its own fence
//! — after which it never accepts the joiner's synced mark. Once *every* other member
//! of both layouts holds such a fence, none of them counted the joiner synced before
//! (a member that did may have committed, and then it has no pending change to fence),
//! so the joiner no longer counts as able to sync.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::layout::RingLayout;
use super::node::NodeId;
use super::ownership::{ranges_moved, MovedRange};
use super::token::Position;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HistoryError {
    #[error("layout version {found} cannot follow version {committed} (must be {committed} + 1)")]
    NotNext { committed: u64, found: u64 },
    #[error("a change to layout version {0} is already in progress")]
    Busy(u64),
    #[error("synced node {0} is not a member of the pending layout")]
    SyncedNotMember(NodeId),
    #[error("fenced node {0} is not a member of either layout")]
    FencedNotMember(NodeId),
}

/// One member's fence of the pending change (`LayoutHistory::mark_fenced`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    /// Members it had served a whole sync stream to before it fenced.
    pub served: BTreeSet<NodeId>,
    /// Members it holds gone for good (an operator said so): it never accepts their
    /// synced mark. Grows as it learns of others' declarations.
    pub gone: BTreeSet<NodeId>,
    /// Claims it never held and never will: its own if it fenced unsynced (it never
    /// syncs afterwards), and those of members it believed dead or holds gone. Grows.
    pub excludes: BTreeSet<NodeId>,
}

/// The committed layout, the pending one (if a change is in progress) and which of the
/// pending layout's members hold their new ranges.
///
/// Equality compares `(committed, pending, synced, claims, fences)`; the moved ranges are
/// derived from the two layouts on first use (never while decoding) and shared by clones.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "HistoryWire", into = "HistoryWire")]
pub struct LayoutHistory {
    committed: RingLayout,
    pending: Option<RingLayout>,
    /// Members of the pending layout whose claim to be synced is established: a majority
    /// of the committed layout's members hold it. What the commit counts.
    synced: BTreeSet<NodeId>,
    /// The claims to be synced this node holds, each heard from its claimant itself (or
    /// established). What other nodes count when establishing a claim.
    claims: BTreeSet<NodeId>,
    /// The claims this node held when it completed the commit of `committed`, as far as
    /// it knows (at least its own, if it synced). A member's report thus still carries
    /// them after it committed, for members that missed them (what they accept from it:
    /// `node/membership/confirm.rs`). Not part of equality.
    committed_by: BTreeSet<NodeId>,
    /// Members that fenced the pending change (see the module docs). With no change
    /// pending: the fences that aborted the change the committed layout replaced, if it
    /// was an abort (a member's report thus still vouches for its own fence). Part of
    /// equality.
    fences: BTreeMap<NodeId, Fence>,
    /// Derived from `(committed, pending)`: the ranges whose replica set changes. Must be
    /// replaced whenever either layout changes.
    moved: Arc<OnceLock<Vec<MovedRange>>>,
}

// Without the derived moved ranges (large; and whether computed yet must not show).
impl std::fmt::Debug for LayoutHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayoutHistory")
            .field("committed", &self.committed)
            .field("pending", &self.pending)
            .field("synced", &self.synced)
            .field("claims", &self.claims)
            .field("committed_by", &self.committed_by)
            .field("fences", &self.fences)
            .finish()
    }
}

impl PartialEq for LayoutHistory {
    fn eq(&self, other: &Self) -> bool {
        self.committed == other.committed
            && self.pending == other.pending
            && self.synced == other.synced
            && self.claims == other.claims
            && self.fences == other.fences
    }
}

impl Eq for LayoutHistory {}

impl LayoutHistory {
    pub fn new(committed: RingLayout) -> Self {
        LayoutHistory {
            committed,
            pending: None,
            synced: BTreeSet::new(),
            claims: BTreeSet::new(),
            committed_by: BTreeSet::new(),
            fences: BTreeMap::new(),
            moved: Arc::default(),
        }
    }

    /// This history's pending change, learned to have been aborted (from a majority's
    /// reports): the abort layout committed, the fences known so far kept as its proof.
    pub fn learned_aborted(&self) -> Option<Self> {
        let aborted = self.aborted_layout()?;
        let mut history = LayoutHistory::new(aborted);
        history.fences = self.fences.clone();
        Some(history)
    }

    /// `committed`, learned as committed; `by`: members known to have synced for it.
    pub fn committed_by_members(committed: RingLayout, by: BTreeSet<NodeId>) -> Self {
        let mut history = LayoutHistory::new(committed);
        history.committed_by = by
            .into_iter()
            .filter(|id| history.committed.node(*id).is_some())
            .collect();
        history
    }

    /// Members known to have synced for the committed layout (see the field).
    pub fn committed_by(&self) -> &BTreeSet<NodeId> {
        &self.committed_by
    }

    pub fn committed(&self) -> &RingLayout {
        &self.committed
    }

    pub fn pending(&self) -> Option<&RingLayout> {
        self.pending.as_ref()
    }

    /// See the field.
    pub fn synced(&self) -> &BTreeSet<NodeId> {
        &self.synced
    }

    /// See the field.
    pub fn claims(&self) -> &BTreeSet<NodeId> {
        &self.claims
    }

    /// See the field.
    pub fn fences(&self) -> &BTreeMap<NodeId, Fence> {
        &self.fences
    }

    /// The layout an abort of the pending change commits: the committed one, numbered
    /// after the pending one.
    pub fn aborted_layout(&self) -> Option<RingLayout> {
        let pending = self.pending.as_ref()?;
        Some(self.committed.renumbered(pending.version().checked_add(1)?))
    }

    /// The member the pending change removes, if it removes one.
    pub fn removed(&self) -> Option<NodeId> {
        let pending = self.pending.as_ref()?;
        let mut gone = self
            .committed
            .nodes()
            .keys()
            .filter(|id| pending.node(**id).is_none());
        match (gone.next(), gone.next()) {
            (Some(id), None) => Some(*id),
            _ => None,
        }
    }

    /// Ranges whose replica set differs between the committed and pending layouts
    /// (computed on the first call: both rings and a walk per range).
    pub fn moved(&self) -> &[MovedRange] {
        self.moved.get_or_init(|| match &self.pending {
            Some(pending) => ranges_moved(&self.committed, pending),
            None => Vec::new(),
        })
    }

    /// The newest layout version known: what data messages carry.
    pub fn epoch(&self) -> u64 {
        self.newest().version()
    }

    /// A number that grows with every step of the history (a change chosen, a change
    /// committed): `2 × committed version + 1 while a change is pending`. Gossip
    /// carries it, so a node that missed a commit (same epoch, older state) hears of it.
    pub fn stamp(&self) -> u64 {
        self.committed
            .version()
            .saturating_mul(2)
            .saturating_add(u64::from(self.pending.is_some()))
    }

    /// The pending layout if any, else the committed one.
    pub fn newest(&self) -> &RingLayout {
        self.pending.as_ref().unwrap_or(&self.committed)
    }

    /// Members of the committed or the pending layout.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let mut ids: BTreeSet<NodeId> = self.committed.nodes().keys().copied().collect();
        if let Some(pending) = &self.pending {
            ids.extend(pending.nodes().keys().copied());
        }
        ids
    }

    pub fn is_member(&self, id: NodeId) -> bool {
        self.committed.node(id).is_some()
            || self.pending.as_ref().is_some_and(|p| p.node(id).is_some())
    }

    /// The replica sets an operation on `key` needs a majority of: the committed
    /// layout's, plus the pending layout's while a change is in progress and it differs.
    pub fn replica_sets(&self, key: &[u8]) -> Vec<Vec<NodeId>> {
        let old = self.committed.preference_list(key);
        match &self.pending {
            None => vec![old],
            Some(pending) => {
                let new = pending.preference_list(key);
                if same_set(&old, &new) {
                    vec![old]
                } else {
                    vec![old, new]
                }
            }
        }
    }

    /// What a scan page starting at ring position `position` reads: the last position of
    /// the arc from `position` on that has the same replicas in every layout in play
    /// (the first token at or after `position` in each; `u64::MAX` past the last one,
    /// where positions wrap to the first token's replicas), and those replica sets, as
    /// [`LayoutHistory::replica_sets`] gives them for a key at `position`.
    pub fn scan_arc(&self, position: Position) -> (Position, Vec<Vec<NodeId>>) {
        let end_of = |layout: &RingLayout| {
            let tokens = layout.tokens();
            let next = tokens.partition_point(|(token, _)| *token < position);
            tokens.get(next).map_or(Position::MAX, |(token, _)| *token)
        };
        let old = self.committed.owners_at(position);
        let mut end = end_of(&self.committed);
        let sets = match &self.pending {
            None => vec![old],
            Some(pending) => {
                end = end.min(end_of(pending));
                let new = pending.owners_at(position);
                if same_set(&old, &new) {
                    vec![old]
                } else {
                    vec![old, new]
                }
            }
        };
        (end, sets)
    }

    /// Starts the change to `next` (chosen for version `committed + 1`). Beginning the
    /// same change twice is a no-op.
    pub fn begin(&mut self, next: RingLayout) -> Result<(), HistoryError> {
        if let Some(pending) = &self.pending {
            return if *pending == next {
                Ok(())
            } else {
                Err(HistoryError::Busy(pending.version()))
            };
        }
        if Some(next.version()) != self.committed.version().checked_add(1) {
            return Err(HistoryError::NotNext {
                committed: self.committed.version(),
                found: next.version(),
            });
        }
        self.moved = Arc::default();
        self.pending = Some(next);
        self.synced.clear();
        self.claims.clear();
        self.fences.clear();
        self.try_commit();
        Ok(())
    }

    /// Whether `node` is a member of the pending layout that did not fence before it
    /// synced (a fenced member never syncs afterwards).
    fn may_claim(&self, node: NodeId) -> bool {
        let member = self
            .pending
            .as_ref()
            .is_some_and(|p| p.node(node).is_some());
        let fenced_unsynced = self
            .fences
            .get(&node)
            .is_some_and(|fence| fence.excludes.contains(&node));
        member && !fenced_unsynced
    }

    /// Whether this node may still hold or count `node`'s claim: it may claim, and no
    /// fence known here holds it gone.
    fn claim_allowed(&self, node: NodeId) -> bool {
        self.may_claim(node) && !self.fences.values().any(|fence| fence.gone.contains(&node))
    }

    /// This node (`me`) holds `node`'s claim to be synced (heard from `node` itself, or
    /// its own after its sync). Refused once `me`'s fence excludes it. Returns whether
    /// anything changed.
    pub fn hold_claim(&mut self, me: NodeId, node: NodeId) -> bool {
        let excluded = self
            .fences
            .get(&me)
            .is_some_and(|fence| fence.excludes.contains(&node));
        if excluded || !self.claim_allowed(node) {
            return false;
        }
        self.claims.insert(node)
    }

    /// Records that `node`'s claim is established (a majority of the committed layout's
    /// members hold it: [`Self::stabilize`]); commits if that completes the change.
    /// Returns whether anything changed.
    pub fn mark_synced(&mut self, node: NodeId) -> bool {
        if !self.claim_allowed(node) || !self.synced.insert(node) {
            return false;
        }
        self.try_commit();
        true
    }

    /// The members whose holding of `y`'s claim counts: the committed layout's members
    /// other than `y` and than the member the change removes (all of them for a joiner
    /// in a join), or `y` alone if none is left. Not `y` itself: were it counted, a
    /// claim held by a bare majority that includes `y` would, once `y` is lost for good,
    /// be held by a minority of the survivors — members that committed on it, and
    /// others that could never learn of it. Not the removed member: it is usually dead.
    fn claim_voters(&self, y: NodeId) -> Vec<NodeId> {
        let removed = self.removed();
        let others: Vec<NodeId> = self
            .committed
            .nodes()
            .keys()
            .copied()
            .filter(|id| *id != y && Some(*id) != removed)
            .collect();
        if others.is_empty() {
            vec![y]
        } else {
            others
        }
    }

    /// Marks synced every member `y` of the pending layout whose claim a majority of its
    /// [`Self::claim_voters`] hold: `me` by this history's `claims`, any other `h` by
    /// `holds(h, y)` (from `h`'s own report). Returns whether anything changed.
    pub fn stabilize(&mut self, me: NodeId, holds: impl Fn(NodeId, NodeId) -> bool) -> bool {
        let Some(pending) = &self.pending else {
            return false;
        };
        let established: Vec<NodeId> = pending
            .nodes()
            .keys()
            .copied()
            .filter(|y| !self.synced.contains(y))
            .filter(|y| {
                let voters = self.claim_voters(*y);
                let holders = voters
                    .iter()
                    .filter(|h| {
                        if **h == me {
                            self.claims.contains(y)
                        } else {
                            holds(**h, *y)
                        }
                    })
                    .count();
                holders * 2 > voters.len()
            })
            .collect();
        let mut changed = false;
        for y in established {
            changed |= self.mark_synced(y);
            if self.pending.is_none() {
                break;
            }
        }
        changed
    }

    /// Whether at least half of `y`'s claim voters exclude its claim: no majority of
    /// them can ever hold it, so it is never established.
    fn claim_excluded(&self, y: NodeId) -> bool {
        let voters = self.claim_voters(y);
        let excluding = voters
            .iter()
            .filter(|h| {
                self.fences
                    .get(h)
                    .is_some_and(|fence| fence.excludes.contains(&y))
            })
            .count();
        excluding * 2 >= voters.len()
    }

    /// Records `node`'s fence of the pending change; aborts the change if that proves
    /// it can never commit (or commits it, if it already could). Returns whether
    /// anything changed. A fence's `served` is final; its `gone` and `excludes` only
    /// grow.
    pub fn mark_fenced(&mut self, node: NodeId, fence: Fence) -> bool {
        if self.pending.is_none() || !self.is_member(node) {
            return false;
        }
        match self.fences.get_mut(&node) {
            Some(known) => {
                if fence.gone.is_subset(&known.gone) && fence.excludes.is_subset(&known.excludes) {
                    return false;
                }
                known.gone.extend(fence.gone);
                known.excludes.extend(fence.excludes);
            }
            None => {
                self.fences.insert(node, fence);
            }
        }
        self.try_commit();
        true
    }

    /// Members some fence holds gone for good.
    pub fn gone(&self) -> BTreeSet<NodeId> {
        self.fences
            .values()
            .flat_map(|fence| fence.gone.iter().copied())
            .collect()
    }

    /// Members some fence holds gone for good that this history's own knowledge does
    /// not yet put in `me`'s fence: what `me` must add to its own.
    pub fn gone_to_adopt(&self, me: NodeId) -> BTreeSet<NodeId> {
        let mut gone = self.gone();
        if let Some(mine) = self.fences.get(&me) {
            gone.retain(|id| !mine.gone.contains(id));
        }
        gone
    }

    /// Whether every member of both layouts but `y` holds a fence naming `y` gone.
    fn declared_gone(&self, y: NodeId) -> bool {
        self.members()
            .iter()
            .filter(|id| **id != y)
            .all(|id| self.fences.get(id).is_some_and(|f| f.gone.contains(&y)))
    }

    /// Whether new replica `y` is synced or may still be: it did not fence unsynced,
    /// no majority of fences rules its claim out, and — unless this node holds its
    /// claim (it synced) — for every moved range it gains, the old replicas that may
    /// still serve it a whole stream (itself, those not fenced, those whose fence names
    /// it) suffice ([`range_readable`]).
    fn may_sync(&self, y: NodeId) -> bool {
        if self.synced.contains(&y) {
            return true;
        }
        if !self.may_claim(y) || self.declared_gone(y) || self.claim_excluded(y) {
            return false;
        }
        if self.claims.contains(&y) {
            return true;
        }
        let removed = self.removed();
        self.moved()
            .iter()
            .filter(|(_, _, new)| new.contains(&y))
            .all(|(_, old, _)| {
                range_readable(old, removed, |source| {
                    source == y
                        || self
                            .fences
                            .get(&source)
                            .is_none_or(|fence| fence.served.contains(&y))
                })
            })
    }

    /// Whether the fences prove that some moved range can never have a majority of its
    /// new replicas synced: the pending change can never commit.
    pub fn abort_proven(&self) -> bool {
        if self.pending.is_none() || self.fences.is_empty() {
            return false;
        }
        let mut may: BTreeMap<NodeId, bool> = BTreeMap::new();
        for (_, _, new) in self.moved() {
            if new.is_empty() {
                continue;
            }
            let possible = new
                .iter()
                .filter(|y| *may.entry(**y).or_insert_with(|| self.may_sync(**y)))
                .count();
            if possible * 2 <= new.len() {
                return true;
            }
        }
        false
    }

    /// Whether every moved range has a majority of its new replicas synced.
    pub fn sync_complete(&self) -> bool {
        self.pending.is_some()
            && self.moved().iter().all(|(_, _, new_owners)| {
                let synced = new_owners
                    .iter()
                    .filter(|id| self.synced.contains(id))
                    .count();
                synced > new_owners.len() / 2 || new_owners.is_empty()
            })
    }

    fn try_commit(&mut self) {
        if self.sync_complete() {
            if let Some(pending) = self.pending.take() {
                self.committed = pending;
                self.committed_by = std::mem::take(&mut self.claims);
                self.synced.clear();
                self.fences.clear();
                self.moved = Arc::default();
            }
        } else if self.abort_proven() {
            if let Some(aborted) = self.aborted_layout() {
                // Kept whole as the abort's proof for members that missed it (the
                // joiner's own fence may be part of it).
                self.committed = aborted;
                self.pending = None;
                self.synced.clear();
                self.claims.clear();
                self.committed_by.clear();
                self.moved = Arc::default();
            }
        }
    }
}

/// Whether a new replica that fully read the old replicas `read` says yes to holds
/// every value acknowledged on a moved range whose old replicas are `old`: a majority
/// of them, or — for a change that removes one of them (`removed`), from at least two
/// — every other one. Either way every majority of `old`, where an acknowledged write
/// is, contains one that was read (after it was fenced by the change's epoch). The
/// second form lets a dead member be removed where its replica sets are too small for
/// a majority without it (N = 2), rebuilding its ranges from the survivors.
pub fn range_readable(
    old: &[NodeId],
    removed: Option<NodeId>,
    read: impl Fn(NodeId) -> bool,
) -> bool {
    if old.is_empty() {
        return true;
    }
    let count = old.iter().filter(|id| read(**id)).count();
    if count * 2 > old.len() {
        return true;
    }
    match removed {
        Some(gone) if old.len() >= 2 && old.contains(&gone) => {
            old.iter().filter(|id| **id != gone).all(|id| read(*id))
        }
        _ => false,
    }
}

fn same_set(a: &[NodeId], b: &[NodeId]) -> bool {
    a.len() == b.len() && a.iter().all(|id| b.contains(id))
}

/// Serialized form: the invariants are re-checked on decode and `moved` is derived on
/// first use, so a peer cannot hand over an inconsistent history and decoding costs
/// time proportional to the bytes.
/// Generic over the layout so that a history of an older layout format
/// (`legacy::HistoryV5`) decodes through the same shape.
#[derive(Serialize, Deserialize)]
pub(crate) struct HistoryWire<L = RingLayout> {
    committed: L,
    pending: Option<L>,
    synced: Vec<NodeId>,
    committed_by: Vec<NodeId>,
    fences: Vec<(NodeId, Fence)>,
    claims: Vec<NodeId>,
}

impl<L> HistoryWire<L> {
    /// The same history with its layouts converted by `upgrade`.
    pub(crate) fn try_map_layouts<E>(
        self,
        upgrade: impl Fn(L) -> Result<RingLayout, E>,
    ) -> Result<HistoryWire, E> {
        Ok(HistoryWire {
            committed: upgrade(self.committed)?,
            pending: self.pending.map(&upgrade).transpose()?,
            synced: self.synced,
            committed_by: self.committed_by,
            fences: self.fences,
            claims: self.claims,
        })
    }
}

impl TryFrom<HistoryWire> for LayoutHistory {
    type Error = HistoryError;

    fn try_from(wire: HistoryWire) -> Result<Self, HistoryError> {
        let mut history = LayoutHistory::from_parts(wire.committed, wire.pending, wire.synced)?;
        for node in wire.committed_by {
            if history.committed.node(node).is_none() {
                return Err(HistoryError::SyncedNotMember(node));
            }
            history.committed_by.insert(node);
        }
        // `from_parts` (shared with the formats before claims) holds what is synced.
        history.claims.clear();
        for node in wire.claims {
            if history
                .pending
                .as_ref()
                .is_none_or(|p| p.node(node).is_none())
            {
                return Err(HistoryError::SyncedNotMember(node));
            }
            history.claims.insert(node);
        }
        for (node, fence) in wire.fences {
            // With no change pending, the fences are an abort's proof and may name
            // members of the aborted layout, which this history no longer holds.
            if history.pending.is_some() && !history.is_member(node) {
                return Err(HistoryError::FencedNotMember(node));
            }
            history.fences.insert(node, fence);
        }
        Ok(history)
    }
}

impl LayoutHistory {
    /// This history with `fences` as its fences (an older record's, converted).
    pub(crate) fn with_fences(mut self, fences: BTreeMap<NodeId, Fence>) -> Self {
        self.fences = fences;
        self
    }

    /// A history from its parts (decoded from a peer or a record), checked: the pending
    /// layout follows the committed one, synced nodes are its members (and held as
    /// claims: formats before claims counted the claims they held). Derives nothing.
    pub fn from_parts(
        committed: RingLayout,
        pending: Option<RingLayout>,
        synced: impl IntoIterator<Item = NodeId>,
    ) -> Result<Self, HistoryError> {
        let mut history = LayoutHistory::new(committed);
        if let Some(pending) = pending {
            // As `begin`, without deriving the moved ranges (nor committing a change
            // that moves nothing: the receiver's merge does that).
            let committed = history.committed.version();
            if Some(pending.version()) != committed.checked_add(1) {
                return Err(HistoryError::NotNext {
                    committed,
                    found: pending.version(),
                });
            }
            history.pending = Some(pending);
        }
        for node in synced {
            let member = history
                .pending
                .as_ref()
                .is_some_and(|p| p.node(node).is_some());
            if !member {
                return Err(HistoryError::SyncedNotMember(node));
            }
            history.synced.insert(node);
            history.claims.insert(node);
        }
        Ok(history)
    }
}

impl From<LayoutHistory> for HistoryWire {
    fn from(history: LayoutHistory) -> Self {
        HistoryWire {
            committed: history.committed,
            pending: history.pending,
            synced: history.synced.into_iter().collect(),
            committed_by: history.committed_by.into_iter().collect(),
            fences: history.fences.into_iter().collect(),
            claims: history.claims.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::NodeSpec;

    fn layout(version: u64, ids: &[u64]) -> RingLayout {
        layout_of(version, 3, ids)
    }

    fn two_replicas(version: u64, ids: &[u64]) -> RingLayout {
        layout_of(version, 2, ids)
    }

    fn layout_of(version: u64, replicas: usize, ids: &[u64]) -> RingLayout {
        RingLayout::from_parts(
            version,
            replicas,
            16,
            ids.iter().map(|id| NodeSpec::new(*id, "z", 1)),
        )
        .expect("layout")
    }

    #[test]
    fn a_change_commits_once_a_majority_of_each_moved_ranges_new_replicas_synced() {
        let mut history = LayoutHistory::new(layout(1, &[1, 2, 3]));
        history.begin(layout(2, &[1, 2, 3, 4])).expect("begin");
        assert_eq!(history.epoch(), 2);
        assert!(!history.moved().is_empty());
        assert!(history.begin(layout(2, &[1, 2, 3, 5])).is_err());
        // Node 4 is a new replica of every moved range; one more per range is needed.
        assert!(history.mark_synced(NodeId(4)));
        assert!(!history.mark_synced(NodeId(4)));
        assert!(!history.mark_synced(NodeId(9)));
        for id in [1, 2, 3] {
            history.mark_synced(NodeId(id));
        }
        assert_eq!(history.committed().version(), 2);
        assert!(history.pending().is_none());
        assert_eq!(history.replica_sets(b"k").len(), 1);
    }

    #[test]
    fn joint_replica_sets_while_pending_and_the_commit_remembers_who_synced() {
        let mut history = LayoutHistory::new(layout(1, &[1, 2, 3]));
        history.begin(layout(2, &[1, 2, 3, 4])).expect("begin");
        let joint = (0..200)
            .map(|i| history.replica_sets(format!("k{i}").as_bytes()))
            .filter(|sets| sets.len() == 2)
            .count();
        assert!(joint > 0);
        let mut marked = BTreeSet::new();
        for id in [4, 1, 2, 3] {
            if history.pending().is_some() {
                assert!(history.hold_claim(NodeId(1), NodeId(id)));
                assert!(history.mark_synced(NodeId(id)));
                marked.insert(NodeId(id));
            }
        }
        assert_eq!(history.committed().version(), 2);
        // The claims held at the commit, which its report keeps vouching for.
        assert_eq!(history.committed_by(), &marked);
        let bytes = postcard::to_allocvec(&history).expect("encode");
        let back: LayoutHistory = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back.committed_by(), history.committed_by());
    }

    #[test]
    fn decoding_a_history_derives_neither_ring_nor_moved_ranges() {
        // The largest ring the limits allow (TOKENS_TOTAL_MAX tokens) in a frame of a
        // few KiB: decoding it must cost about the frame, not the ring (4 MiB of tokens,
        // a walk per range); the receiver derives them only if it adopts the history.
        use crate::ring::layout::{TOKENS_PER_NODE_MAX, TOKENS_TOTAL_MAX};
        let capacity = (TOKENS_PER_NODE_MAX / 512) as u32;
        let nodes = TOKENS_TOTAL_MAX / TOKENS_PER_NODE_MAX;
        let spec = |id: u64| NodeSpec::new(id, format!("zone-{}", id % 3), capacity);
        let committed = RingLayout::from_parts(1, 3, 512, (1..nodes).map(spec)).expect("committed");
        let pending = RingLayout::from_parts(2, 3, 512, (1..=nodes).map(spec)).expect("pending");
        let mut history = LayoutHistory::new(committed);
        history.begin(pending).expect("begin");
        let frame = postcard::to_allocvec(&history).expect("encode");
        let (decoded, peak_bytes) = crate::alloc_count::peak_allocated(|| {
            postcard::from_bytes::<LayoutHistory>(&frame).expect("decode")
        });
        assert!(
            peak_bytes <= 64 * frame.len(),
            "decoding a {} byte history allocated {peak_bytes} bytes",
            frame.len()
        );
        assert_eq!(decoded, history);
        // Derived on use, and the same as the sender's.
        assert_eq!(decoded.moved(), history.moved());
        assert_eq!(
            decoded.pending().map(|p| p.tokens().len() as u64),
            Some(TOKENS_TOTAL_MAX)
        );
    }

    #[test]
    fn wire_form_round_trips_and_rejects_inconsistent_histories() {
        let mut history = LayoutHistory::new(layout(1, &[1, 2, 3]));
        history.begin(layout(2, &[1, 2, 3, 4])).expect("begin");
        history.mark_synced(NodeId(4));
        history.hold_claim(NodeId(1), NodeId(3));
        let bytes = postcard::to_allocvec(&history).expect("encode");
        let back: LayoutHistory = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back, history);
        assert_eq!(back.claims(), &BTreeSet::from([NodeId(3)]));
        let bad = HistoryWire {
            committed: layout(1, &[1, 2, 3]),
            pending: Some(layout(3, &[1, 2])),
            synced: vec![],
            committed_by: vec![],
            fences: vec![],
            claims: vec![],
        };
        let bytes = postcard::to_allocvec(&bad).expect("encode");
        assert!(postcard::from_bytes::<LayoutHistory>(&bytes).is_err());
        let claim_of_a_stranger = HistoryWire {
            committed: layout(1, &[1, 2, 3]),
            pending: Some(layout(2, &[1, 2, 3, 4])),
            synced: vec![],
            committed_by: vec![],
            fences: vec![],
            claims: vec![NodeId(9)],
        };
        let bytes = postcard::to_allocvec(&claim_of_a_stranger).expect("encode");
        assert!(postcard::from_bytes::<LayoutHistory>(&bytes).is_err());
    }

    /// The 1 → 2 join whose joiner died: the only source fences, the change aborts to
    /// the old members numbered 3; with the joiner served a whole stream first, the same
    /// fence cannot abort it (the joiner may have synced) unless it excludes the
    /// joiner's claim.
    #[test]
    fn fences_abort_a_change_only_when_it_can_never_commit() {
        let mut history = LayoutHistory::new(layout(1, &[1]));
        history.begin(layout(2, &[1, 2])).expect("begin");
        assert!(history.mark_synced(NodeId(1)));
        let mut served = history.clone();
        // The joiner's own fence (it is a member of the pending layout) goes with the
        // abort: the aborted history must still decode.
        let mut joiner_fenced = history.clone();
        // (A joiner that fenced unsynced never syncs: that alone aborts a 1 → 2 join.)
        let own = Fence {
            excludes: BTreeSet::from([NodeId(2)]),
            ..Fence::default()
        };
        assert!(joiner_fenced.mark_fenced(NodeId(2), own));
        assert!(joiner_fenced.pending().is_none());
        let bytes = postcard::to_allocvec(&joiner_fenced).expect("encode");
        let back: LayoutHistory = postcard::from_bytes(&bytes).expect("an aborted history decodes");
        assert_eq!(back, joiner_fenced);
        assert!(history.mark_fenced(NodeId(1), Fence::default()));
        assert!(history.pending().is_none());
        assert_eq!(history.committed(), &layout(1, &[1]).renumbered(3));
        assert_eq!(history.epoch(), 3);
        let fence = Fence {
            served: BTreeSet::from([NodeId(2)]),
            gone: BTreeSet::new(),
            excludes: BTreeSet::new(),
        };
        // Served, but its claim excluded (n1 believed it dead, unheard): n1 never holds
        // it, so nobody can count n2 synced (it takes n1, the majority of {n1}).
        let mut unheld = served.clone();
        assert!(unheld.mark_fenced(
            NodeId(1),
            Fence {
                excludes: BTreeSet::from([NodeId(2)]),
                ..fence.clone()
            }
        ));
        assert!(unheld.pending().is_none());
        assert!(served.mark_fenced(NodeId(1), fence.clone()));
        assert_eq!(served.pending(), Some(&layout(2, &[1, 2])));
        // The operator holds the joiner gone: with every other member's fence saying
        // so (here n1 alone), it no longer counts as able to sync.
        let gone = Fence {
            gone: BTreeSet::from([NodeId(2)]),
            ..fence.clone()
        };
        assert!(served.clone().mark_fenced(NodeId(1), gone.clone()));
        let mut declared = served.clone();
        declared.mark_fenced(NodeId(1), gone);
        assert_eq!(declared.committed(), &layout(1, &[1]).renumbered(3));
        // ... and its synced mark is refused once a fence holds it gone.
        let mut three = LayoutHistory::new(two_replicas(1, &[1, 2]));
        three.begin(two_replicas(2, &[1, 2, 3])).expect("begin");
        three.mark_synced(NodeId(1));
        three.mark_synced(NodeId(2));
        let holds_3_gone = Fence {
            served: BTreeSet::from([NodeId(3)]),
            gone: BTreeSet::from([NodeId(3)]),
            excludes: BTreeSet::new(),
        };
        three.mark_fenced(NodeId(1), holds_3_gone.clone());
        assert!(!three.mark_synced(NodeId(3)));
        assert!(three.pending().is_some(), "n2 has not declared n3 gone yet");
        three.mark_fenced(NodeId(2), holds_3_gone);
        assert_eq!(three.committed().version(), 3);
        // A fenced member never counts as synced afterwards.
        let mut fenced_first = LayoutHistory::new(layout(1, &[1, 2, 3]));
        fenced_first.begin(layout(2, &[1, 2, 3, 4])).expect("begin");
        let own = Fence {
            excludes: BTreeSet::from([NodeId(4)]),
            ..Fence::default()
        };
        fenced_first.mark_fenced(NodeId(4), own);
        assert!(!fenced_first.mark_synced(NodeId(4)));
        // The fenced history round-trips.
        let bytes = postcard::to_allocvec(&served).expect("encode");
        let back: LayoutHistory = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back, served);
    }

    /// A dead member of an N = 2 ring: the survivors rule lets its ranges be rebuilt
    /// from the one other replica; the majority rule alone could not.
    #[test]
    fn a_removal_rebuilds_from_every_other_replica() {
        let old = [NodeId(1), NodeId(2)];
        let read_1 = |id: NodeId| id == NodeId(1);
        assert!(!range_readable(&old, None, read_1));
        assert!(range_readable(&old, Some(NodeId(2)), read_1));
        assert!(!range_readable(&old, Some(NodeId(1)), read_1));
        // The only replica removed: nothing left to read from.
        assert!(!range_readable(&[NodeId(2)], Some(NodeId(2)), |_| false));
        let three = [NodeId(1), NodeId(2), NodeId(3)];
        assert!(!range_readable(&three, Some(NodeId(3)), read_1));
        assert!(range_readable(&three, Some(NodeId(3)), |id| id != NodeId(3)));
    }

    /// A joiner that synced and told one member of two before it died: that member
    /// alone cannot establish its claim (nor commit), and the other's fence, holding no
    /// such claim, proves it never will be: the change aborts.
    #[test]
    fn a_claim_one_member_of_two_holds_is_not_counted_and_is_aborted() {
        let mut witness = LayoutHistory::new(two_replicas(1, &[1, 2]));
        witness.begin(two_replicas(2, &[1, 2, 3])).expect("begin");
        let mut other = witness.clone();
        for id in [1, 2] {
            witness.hold_claim(NodeId(1), NodeId(id));
        }
        assert!(witness.hold_claim(NodeId(1), NodeId(3)));
        // n2 holds n1's and its own claim, not n3's.
        let n2_holds = |_: NodeId, y: NodeId| y != NodeId(3);
        assert!(witness.stabilize(NodeId(1), n2_holds));
        assert_eq!(witness.synced(), &BTreeSet::from([NodeId(1), NodeId(2)]));
        assert!(
            witness.pending().is_some(),
            "n3's claim counted on one holder"
        );
        // n2 fences excluding the claim of n3, dead and unheard: it can never be
        // established.
        let fence = Fence {
            served: BTreeSet::from([NodeId(1), NodeId(3)]),
            gone: BTreeSet::new(),
            excludes: BTreeSet::from([NodeId(3)]),
        };
        assert!(witness.mark_fenced(NodeId(2), fence.clone()));
        assert_eq!(witness.committed().version(), 3, "aborted");
        // n2 itself never holds the claim it excluded; its fence aborts there too.
        other.hold_claim(NodeId(2), NodeId(1));
        other.hold_claim(NodeId(2), NodeId(2));
        assert!(other.mark_fenced(NodeId(2), fence));
        assert!(!other.hold_claim(NodeId(2), NodeId(3)));
        assert_eq!(other.committed().version(), 3);
        // Held by both, n3's claim is established and the change commits.
        let mut both = LayoutHistory::new(two_replicas(1, &[1, 2]));
        both.begin(two_replicas(2, &[1, 2, 3])).expect("begin");
        for id in [1, 2, 3] {
            both.hold_claim(NodeId(1), NodeId(id));
        }
        assert!(both.stabilize(NodeId(1), |_, _| true));
        assert_eq!(both.committed().version(), 2);
        assert_eq!(both.committed_by().len(), 3);
    }

    /// Commit and abort exclude each other, whatever each learner heard and in which
    /// order: random runs of a change (sources serving whole streams, members syncing
    /// only from what they were served, members holding the claims of those that
    /// synced, members fencing), whose marks two learners take in different orders
    /// (each member's own marks in its order), never end with one learner committed and
    /// the other aborted.
    #[derive(Debug, Clone)]
    enum Mark {
        /// Its member holds this claim.
        Holds(NodeId),
        Fence(Fence),
    }

    #[test]
    fn commit_and_abort_exclude_each_other() {
        use crate::rand::SplitMix64;
        let shapes: [(&[u64], &[u64], usize); 5] = [
            (&[1], &[1, 2], 3),
            (&[1, 2], &[1, 2, 3], 2),
            (&[1, 2, 3], &[1, 2, 3, 4], 3),
            (&[1, 2, 3], &[1, 2], 2),
            (&[1, 2, 3, 4], &[1, 2, 3], 3),
        ];
        let mut rng = SplitMix64::new(7);
        let (mut aborts, mut commits) = (0, 0);
        for case in 0..3_000 {
            let (old_ids, new_ids, replicas) = shapes[case % shapes.len()];
            let make = |version, ids: &[u64]| {
                RingLayout::from_parts(
                    version,
                    replicas,
                    4,
                    ids.iter().map(|id| NodeSpec::new(*id, format!("z{id}"), 1)),
                )
                .expect("layout")
            };
            let mut truth = LayoutHistory::new(make(1, old_ids));
            truth.begin(make(2, new_ids)).expect("begin");
            let moved: Vec<MovedRange> = truth.moved().to_vec();
            let removed = truth.removed();
            let nodes: Vec<NodeId> = truth.members().into_iter().collect();
            let mut served: BTreeMap<NodeId, BTreeSet<NodeId>> = BTreeMap::new();
            let mut held: BTreeMap<NodeId, BTreeSet<NodeId>> = BTreeMap::new();
            let mut excluded: BTreeMap<NodeId, BTreeSet<NodeId>> = BTreeMap::new();
            let mut served_then: BTreeMap<NodeId, BTreeSet<NodeId>> = BTreeMap::new();
            let pending_nodes: Vec<NodeId> = truth
                .pending()
                .map(|p| p.nodes().keys().copied().collect())
                .unwrap_or_default();
            let mut fenced: BTreeSet<NodeId> = BTreeSet::new();
            let mut synced: BTreeSet<NodeId> = BTreeSet::new();
            // (node, mark) in the order they happened.
            let mut marks: Vec<(NodeId, Mark)> = Vec::new();
            for _ in 0..rng.range(1, 40) {
                let x = nodes[rng.below(nodes.len() as u64) as usize];
                let y = nodes[rng.below(nodes.len() as u64) as usize];
                // Mostly serving, syncing and holding, so that both outcomes are common.
                let kind = match rng.below(24) {
                    0..=8 => 0,
                    9..=14 => 1,
                    15..=21 => 3,
                    _ => 2,
                };
                match kind {
                    0 if !fenced.contains(&x) => {
                        served.entry(x).or_default().insert(y);
                    }
                    1 if !fenced.contains(&y) && !synced.contains(&y) => {
                        let complete = moved.iter().filter(|(_, _, new)| new.contains(&y)).all(
                            |(_, old, _)| {
                                range_readable(old, removed, |s| {
                                    s == y || served.get(&s).is_some_and(|t| t.contains(&y))
                                })
                            },
                        );
                        if complete && truth.pending().and_then(|p| p.node(y)).is_some() {
                            synced.insert(y);
                            held.entry(y).or_default().insert(y);
                            marks.push((y, Mark::Holds(y)));
                        }
                    }
                    // `x` hears the claims of those that synced from each of them,
                    // except those it excluded.
                    3 => {
                        let refused = excluded.get(&x).cloned().unwrap_or_default();
                        for y in synced.difference(&refused) {
                            if held.entry(x).or_default().insert(*y) {
                                marks.push((x, Mark::Holds(*y)));
                            }
                        }
                    }
                    // `x` fences (again): its own claim excluded if it had not synced,
                    // and some it does not hold.
                    2 => {
                        let mine = held.entry(x).or_default().clone();
                        let excludes = excluded.entry(x).or_default();
                        if fenced.insert(x) {
                            served_then.insert(x, served.get(&x).cloned().unwrap_or_default());
                            if !synced.contains(&x) {
                                excludes.insert(x);
                            }
                        }
                        for p in &pending_nodes {
                            if !mine.contains(p) && rng.below(3) == 0 {
                                excludes.insert(*p);
                            }
                        }
                        marks.push((
                            x,
                            Mark::Fence(Fence {
                                served: served_then.get(&x).cloned().unwrap_or_default(),
                                gone: BTreeSet::new(),
                                excludes: excludes.clone(),
                            }),
                        ));
                    }
                    _ => {}
                }
            }
            let learn = |order: &[(NodeId, Mark)]| {
                let mut h = truth.clone();
                let mut holders: BTreeSet<(NodeId, NodeId)> = BTreeSet::new();
                for (node, mark) in order {
                    match mark {
                        Mark::Holds(y) => {
                            holders.insert((*node, *y));
                        }
                        Mark::Fence(fence) => {
                            h.mark_fenced(*node, fence.clone());
                        }
                    }
                    // The learner is no member: it holds no claim of its own.
                    h.stabilize(NodeId(99), |x, y| holders.contains(&(x, y)));
                }
                h.committed().clone()
            };
            let first = learn(&marks);
            // Another order: members interleaved differently, each one's marks in order.
            let mut shuffled = marks.clone();
            for i in (1..shuffled.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                if shuffled[i].0 != shuffled[j].0 {
                    shuffled.swap(i, j);
                }
            }
            let mut own_order = shuffled.clone();
            for node in &nodes {
                let mine: Vec<_> = marks.iter().filter(|(n, _)| n == node).cloned().collect();
                for (k, slot) in own_order.iter_mut().filter(|(n, _)| n == node).enumerate() {
                    *slot = mine[k].clone();
                }
            }
            let second = learn(&own_order);
            let versions = (first.version(), second.version());
            assert!(
                versions.0 == 1 || versions.1 == 1 || versions.0 == versions.1,
                "case {case}: {marks:?} ended {versions:?}"
            );
            aborts += usize::from(versions.0 == 3);
            commits += usize::from(versions.0 == 2);
        }
        assert!(
            aborts > 100 && commits > 100,
            "aborts {aborts}, commits {commits}"
        );
    }
}

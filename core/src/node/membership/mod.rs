//! Membership changes: admin requests, Paxos per layout version, the layout history
//! spread by gossip, the epoch fence, and range streaming (`sync`).
//!
//! The safety argument (see `ring/history.rs` for joint quorums and the commit rule):
//! - Data messages carry the coordinator's epoch; a replica that knows a newer one
//!   refuses them ([`Membership::admit`]). A replica serves a sync pull only at the
//!   pull's epoch, after persisting its history. So once a new replica X has read a
//!   range from a majority Q of its old replicas, every old-layout-only operation on
//!   that range either reached a member of Q before Q's read (and X got its value) or
//!   is refused by it (and cannot complete: every old majority meets Q).
//! - The history is persisted durably before the node acts on a change.

mod confirm;
mod paxos;
mod sync;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::protocol::{
    AdminRequest, Ballot, ClientError, ClientReply, LayoutReport, OpId, PeerMessage, RequestId,
    SyncPage,
};
use crate::ring::history::Fence;
use crate::ring::{IdentityDigest, LayoutHistory, NodeId, NodeSpec, RingLayout};
use crate::storage::Engine;

use super::gossip::FailureDetector;
use super::meta::{self, PaxosRecord};
use super::mutations::Mutations;
use super::outbox::Outbox;

use paxos::{Acceptor, Proposal, ProposalPhase, Step};
use sync::{build_page, stream_ranges, wipe_gained, SyncJob};

/// What membership steps act on.
pub(crate) struct MCtx<'a> {
    pub now_ms: u64,
    pub engine: &'a dyn Engine,
    pub out: &'a mut Outbox,
    /// Who is believed dead: removals and aborts ask.
    pub detector: &'a FailureDetector,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct MembershipSettings {
    pub request_timeout_ms: u64,
    pub resend_interval_ms: u64,
    /// `NodeConfig::change_timeout_ms`.
    pub change_timeout_ms: u64,
    /// Deliberate bugs for the mutation tests (`node/mutations.rs`; none otherwise).
    pub mutations: Mutations,
}

/// This node's place in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Started without a member list; waits for a member to add it.
    Joining,
    /// In the committed or the pending layout.
    Member,
    /// Removed by a committed change: serves no clients.
    Left,
    /// The layout binds this node's id to another store's identity: this store is not
    /// that member (it lost its data, or took another node's id). It never answers,
    /// votes or coordinates as the member; it must rejoin under a new id.
    Displaced,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipCounters {
    pub changes_proposed: u64,
    pub changes_chosen: u64,
    pub changes_failed: u64,
    /// Data messages refused because they carried an older epoch.
    pub stale_refused: u64,
    pub sync_pages_served: u64,
    pub sync_pages_received: u64,
    pub sync_entries_applied: u64,
    /// Pages this node refused: an entry over its own key or value limit.
    pub sync_pages_refused: u64,
    /// Older registers this node dropped in ranges it gained (`sync.rs`, `wipe_gained`).
    pub sync_stale_dropped: u64,
    /// Changes this node fenced, and changes that ended aborted here.
    pub changes_fenced: u64,
    pub changes_aborted: u64,
}

/// This node's sync for the change in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStatus {
    pub epoch: u64,
    pub ranges: usize,
    pub sources: usize,
    pub sources_done: usize,
    pub entries_applied: u64,
    /// Why a source's pages were refused (this node's sync cannot complete from it).
    pub refused: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipStatus {
    pub role: Role,
    pub epoch: u64,
    pub committed_version: u64,
    /// The change in progress: its version, the nodes it adds and removes.
    pub pending_version: Option<u64>,
    pub joining: Vec<NodeId>,
    pub leaving: Vec<NodeId>,
    /// Members of the pending layout that hold their new ranges.
    pub synced: Vec<NodeId>,
    pub moved_ranges: usize,
    /// How long the change has been pending, as far as this node knows (since it
    /// learned it, this run).
    pub pending_age_ms: Option<u64>,
    /// Members that fenced the pending change (it aborts once their fences prove it
    /// can never commit; `ring/history.rs`).
    pub fenced: Vec<NodeId>,
    pub sync: Option<SyncStatus>,
    pub proposing: bool,
    pub counters: MembershipCounters,
}

/// What the node must do after a membership message.
#[derive(Debug)]
pub(crate) enum Event {
    Nothing,
    /// Apply these streamed entries (registers by tag, eventual states by merge),
    /// durably, then call [`Membership::page_applied`].
    Apply {
        from: NodeId,
        page: SyncPage,
    },
}

/// Reports kept from senders that are not members of this node's layout (a joining
/// node hears from members of layouts it does not know yet), at most.
const FOREIGN_REPORTS_MAX: usize = 64;

#[derive(Debug)]
pub(crate) struct Membership {
    me: NodeId,
    /// This store's identity (`NodeSpec::identity` when it joined).
    identity: IdentityDigest,
    history: LayoutHistory,
    /// The last layout report of each member (and a few others while joining): what
    /// newer layouts are confirmed from (`confirm.rs`).
    reports: BTreeMap<NodeId, LayoutReport>,
    last_pull_all_ms: Option<u64>,
    acceptor: Acceptor,
    proposal: Option<Proposal>,
    sync: Option<SyncJob>,
    settings: MembershipSettings,
    /// Highest ballot round seen: a new proposal starts above it.
    round: u64,
    last_pull_ms: Option<u64>,
    /// Set when the history changed; the node takes it to update its other parts.
    changed: bool,
    counters: MembershipCounters,
    /// The pending change's version and when this node learned it.
    pending_since: Option<(u64, u64)>,
    /// When `fence_if_stuck` looks next (`change_timeout_ms` after `pending_since`, then
    /// every resend interval while the change waits on live nodes).
    stuck_check_ms: Option<u64>,
    /// Members this node sent the last page of a whole sync stream for the change of
    /// this epoch (persisted first: `meta::SyncServedRecord`).
    served: (u64, BTreeSet<NodeId>),
    /// An admin `Abort` waiting for the change of this version to end: client, version,
    /// deadline, and the request to go on with once it is aborted (a `ForceRemove` of
    /// a member the change waited for).
    abort_client: Option<(RequestId, u64, u64, Option<AdminRequest>)>,
    /// The last change this node saw end: its version and whether it was aborted.
    last_outcome: Option<(u64, bool)>,
    /// When `spread_pending` last proposed.
    last_spread_ms: Option<u64>,
    /// Since when this node holds a vote whose outcome it has not learned, with no
    /// proposal of its own running (`repropose_unlearned_vote`).
    unlearned_vote_since_ms: Option<u64>,
}

impl Membership {
    pub fn new(
        me: NodeId,
        identity: IdentityDigest,
        history: LayoutHistory,
        paxos: Option<PaxosRecord>,
        served: Option<(u64, BTreeSet<NodeId>)>,
        settings: MembershipSettings,
        now_ms: u64,
    ) -> Self {
        let acceptor = Acceptor::from_record(paxos);
        let mut membership = Membership {
            me,
            identity,
            reports: BTreeMap::new(),
            last_pull_all_ms: None,
            round: acceptor.promised.round,
            history,
            acceptor,
            proposal: None,
            sync: None,
            settings,
            last_pull_ms: None,
            changed: false,
            counters: MembershipCounters::default(),
            pending_since: None,
            stuck_check_ms: None,
            served: served.unwrap_or_default(),
            abort_client: None,
            last_outcome: None,
            last_spread_ms: None,
            unlearned_vote_since_ms: None,
        };
        // A change pending at open is timed from now (`pending_age_ms` is this run's).
        let before = LayoutHistory::new(membership.history.committed().clone());
        membership.note_change(now_ms, &before);
        membership.refresh_sync(now_ms);
        membership
    }

    /// Members this node served a whole sync stream to for the change of `epoch`.
    fn served_at(&self, epoch: u64) -> BTreeSet<NodeId> {
        match &self.served {
            (at, targets) if *at == epoch => targets.clone(),
            _ => BTreeSet::new(),
        }
    }

    /// Whether this node fenced the pending change.
    fn fenced(&self) -> bool {
        self.history.pending().is_some() && self.history.fences().contains_key(&self.me)
    }

    /// Fences the pending change (see `ring/history.rs`), holding `gone` gone for
    /// good: durably, then tells every member. Aborts it here if that proves it can
    /// never commit. A second call adds to `gone` and to the claims excluded.
    ///
    /// The fence excludes the claims this node does not hold of itself (if unsynced: it
    /// stops syncing) and of members it holds gone or believes dead. A live member's
    /// claim is never excluded: it may still reach everyone, and excluding it could
    /// leave it neither held by a majority nor excluded by half once another member is
    /// lost.
    fn fence(&mut self, ctx: &mut MCtx<'_>, gone: BTreeSet<NodeId>) -> Result<(), String> {
        let Some(pending) = self.history.pending() else {
            return Ok(());
        };
        if self.role() != Role::Member {
            return Ok(());
        }
        let known_gone = self.history.gone();
        let excludes: BTreeSet<NodeId> = pending
            .nodes()
            .keys()
            .copied()
            .filter(|id| {
                !self.history.claims().contains(id)
                    && !self.history.synced().contains(id)
                    && (*id == self.me
                        || gone.contains(id)
                        || known_gone.contains(id)
                        || !ctx.detector.believed_alive(*id, ctx.now_ms))
            })
            .collect();
        let served = self.served_at(self.epoch());
        let first = !self.fenced();
        let mut next = self.history.clone();
        if next.mark_fenced(
            self.me,
            Fence {
                served,
                gone,
                excludes,
            },
        ) {
            self.counters.changes_fenced += u64::from(first);
            self.adopt(ctx, next)?;
            self.broadcast(ctx);
        }
        Ok(())
    }

    /// Another member fenced the pending change: this one fences too, so that the
    /// change ends (committed, if it already could, or aborted) instead of waiting on
    /// pulls that fenced sources no longer serve; and it takes up every member another
    /// fence holds gone for good.
    fn follow_fences(&mut self, ctx: &mut MCtx<'_>) -> Result<(), String> {
        if self.history.pending().is_none() {
            return Ok(());
        }
        let others = self.history.fences().keys().any(|id| *id != self.me);
        let gone = self.history.gone_to_adopt(self.me);
        if (others && !self.fenced()) || !gone.is_empty() {
            self.fence(ctx, gone)?;
        }
        Ok(())
    }

    /// The pending change has waited `change_timeout_ms` here with a node that gains
    /// ranges in it not counted synced (unsynced, or its claim not yet held by a
    /// majority: it cannot tell more members) and believed dead: fence it (and, each
    /// resend interval after, exclude the claims of members that died since).
    fn fence_if_stuck(&mut self, ctx: &mut MCtx<'_>) -> Result<(), String> {
        let (Some(pending), Some(check_ms)) = (self.history.pending(), self.stuck_check_ms) else {
            return Ok(());
        };
        if ctx.now_ms < check_ms {
            return Ok(());
        }
        self.stuck_check_ms = Some(ctx.now_ms.saturating_add(self.settings.resend_interval_ms));
        let waiting_on_dead = pending.nodes().keys().any(|id| {
            !self.history.synced().contains(id)
                && !ctx.detector.believed_alive(*id, ctx.now_ms)
                && self
                    .history
                    .moved()
                    .iter()
                    .any(|(_, _, new)| new.contains(id))
        });
        // Once fenced, members that died since have their claims excluded too.
        if waiting_on_dead || self.fenced() {
            self.fence(ctx, BTreeSet::new())?;
        }
        Ok(())
    }

    /// How the change to `version` ended, if this node saw it end: `true` aborted.
    fn outcome_of(&self, version: u64) -> Option<bool> {
        match self.last_outcome {
            Some((v, aborted)) if v == version => Some(aborted),
            _ => None,
        }
    }

    /// Remembers how a pending change ended between `before` and the current history.
    fn note_outcome(&mut self, before: &LayoutHistory) {
        let Some(pending) = before.pending() else {
            return;
        };
        if self.history.pending().is_some() && self.history.epoch() == pending.version() {
            return;
        }
        let committed = self.history.committed();
        let aborted = before.aborted_layout().as_ref() == Some(committed);
        if aborted {
            self.counters.changes_aborted += 1;
        }
        self.last_outcome = Some((pending.version(), aborted));
    }

    /// Answers an admin `Abort` once its change ended, or its deadline passed.
    fn resolve_abort(&mut self, ctx: &mut MCtx<'_>) {
        let Some((client, version, deadline_ms, _)) = self.abort_client else {
            return;
        };
        let reply = if let Some(aborted) = self.outcome_of(version) {
            if aborted {
                let then = self.abort_client.take().and_then(|(_, _, _, then)| then);
                match then.map(|request| self.desired(ctx, &request)) {
                    None | Some(Ok(None)) => ClientReply::Done,
                    Some(Err(error)) => ClientReply::Error(error),
                    Some(Ok(Some(desired))) => {
                        return self.propose(ctx, Some(client), desired);
                    }
                }
            } else {
                ClientReply::Error(ClientError::Unsupported {
                    reason: format!(
                        "the change to layout version {version} committed before the abort \
                         took hold: nothing was aborted"
                    ),
                })
            }
        } else if ctx.now_ms >= deadline_ms {
            ClientReply::Error(ClientError::Unavailable {
                reason: format!(
                    "the change to layout version {version} is fenced by {} but not \
                     aborted yet: the fences do not prove yet that it can never commit \
                     (members that may still sync, or sources that have not fenced, are \
                     unreachable); it aborts or commits once they answer",
                    names(self.history.fences().keys())
                ),
            })
        } else {
            return;
        };
        self.abort_client = None;
        ctx.out.reply(client, reply);
    }

    pub fn history(&self) -> &LayoutHistory {
        &self.history
    }

    pub fn epoch(&self) -> u64 {
        self.history.epoch()
    }

    pub fn role(&self) -> Role {
        if self.history.committed().version() == 0 {
            return Role::Joining;
        }
        let spec = self
            .history
            .pending()
            .and_then(|layout| layout.node(self.me))
            .or_else(|| self.history.committed().node(self.me));
        match spec {
            None => Role::Left,
            Some(spec) if spec.identity.is_some_and(|bound| bound != self.identity) => {
                Role::Displaced
            }
            Some(_) => Role::Member,
        }
    }

    /// What this node tells others about the layout: its history and Paxos vote.
    fn report(&self) -> PeerMessage {
        let next = self.history.committed().version().saturating_add(1);
        let vote = self
            .acceptor
            .accepted
            .as_ref()
            .filter(|_| self.acceptor.version == next)
            .map(|(ballot, layout)| (next, *ballot, layout.clone()));
        PeerMessage::Layout(Box::new(LayoutReport {
            history: self.history.clone(),
            vote,
        }))
    }

    /// Whether the history changed since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    pub fn next_timeout_ms(&self) -> Option<u64> {
        let proposal = self
            .proposal
            .as_ref()
            .map(|p| p.next_resend_ms.min(p.deadline_ms));
        let sync = self.sync.as_ref().and_then(|job| {
            job.sources
                .values()
                .filter(|s| !s.done)
                .map(|s| s.next_send_ms)
                .min()
        });
        let stuck = self.stuck_check_ms.filter(|_| !self.fenced());
        let abort = self
            .abort_client
            .as_ref()
            .map(|(_, _, deadline_ms, _)| *deadline_ms);
        [proposal, sync, stuck, abort].into_iter().flatten().min()
    }

    /// The epoch fence for a data message of `req` carrying `epoch` from `from`: `false`
    /// (and a `Stale` answer) if this node knows a newer epoch. A newer epoch than ours
    /// is served (quorums are the coordinator's business) and makes us pull.
    pub fn admit(&mut self, ctx: &mut MCtx<'_>, from: NodeId, req: OpId, epoch: u64) -> bool {
        if epoch < self.epoch() {
            self.counters.stale_refused += 1;
            ctx.out.send(
                from,
                PeerMessage::Stale {
                    req,
                    history: Box::new(self.history.clone()),
                },
            );
            return false;
        }
        if epoch > self.epoch() {
            self.pull(ctx, from);
        }
        true
    }

    /// A gossip round went to `targets`: while a change is in progress the history
    /// goes along, so sync progress spreads and the change commits everywhere. So does
    /// a vote this member holds for the next version and has not adopted: the change
    /// may be chosen (a majority voted at one ballot) with its proposer gone and no
    /// member knowing it; votes are not in the gossip stamp, so only this brings them
    /// together (`confirm.rs` then adopts what they prove chosen, and nothing else).
    pub fn on_gossip_round(&mut self, ctx: &mut MCtx<'_>, targets: &[NodeId]) {
        if self.history.pending().is_some() || self.holds_unlearned_vote() {
            for to in targets {
                ctx.out.send(*to, self.report());
            }
        }
    }

    /// A vote for version committed + 1 while no change is pending here.
    fn holds_unlearned_vote(&self) -> bool {
        self.history.pending().is_none()
            && self.role() == Role::Member
            && self.acceptor.accepted.is_some()
            && self.acceptor.version == self.history.committed().version().saturating_add(1)
    }

    /// A peer's gossip named its history stamp ([`LayoutHistory::stamp`]).
    pub fn on_gossip_stamp(&mut self, ctx: &mut MCtx<'_>, from: NodeId, stamp: u64) {
        let mine = self.history.stamp();
        if stamp < mine && self.role() != Role::Joining {
            ctx.out.send(from, self.report());
        } else if stamp > mine {
            self.pull(ctx, from);
        }
    }

    /// A peer's message named layout epoch `epoch`: a newer one than ours makes us pull.
    pub fn heard_epoch(&mut self, ctx: &mut MCtx<'_>, from: NodeId, epoch: u64) {
        if epoch > self.epoch() {
            self.pull(ctx, from);
        }
    }

    fn pull(&mut self, ctx: &mut MCtx<'_>, from: NodeId) {
        let due = self
            .last_pull_ms
            .is_none_or(|last| ctx.now_ms >= last.saturating_add(self.settings.resend_interval_ms));
        if due {
            self.last_pull_ms = Some(ctx.now_ms);
            ctx.out.send(
                from,
                PeerMessage::LayoutPull {
                    epoch: self.epoch(),
                },
            );
        }
    }

    /// A layout report from `from` (its `Layout`, or the history of its `Stale`): kept,
    /// then whatever the reports now confirm is adopted (`confirm.rs`). A report newer
    /// than what they confirm makes this node ask every member for theirs.
    pub fn learn_report(
        &mut self,
        ctx: &mut MCtx<'_>,
        from: NodeId,
        report: LayoutReport,
    ) -> Result<(), String> {
        if from == self.me {
            return Ok(());
        }
        let known = self.history.is_member(from);
        let joining = self.history.committed().version() == 0;
        let room = self.reports.contains_key(&from) || self.reports.len() < FOREIGN_REPORTS_MAX;
        if !(known || joining && room) {
            return Ok(());
        }
        let newer = report.history.stamp() > self.history.stamp()
            || report.vote.as_ref().is_some_and(|(version, _, _)| {
                self.history.pending().is_none() && *version > self.history.committed().version()
            });
        self.reports.insert(from, report);
        self.confirm(ctx)?;
        self.follow_fences(ctx)?;
        if newer
            && self
                .reports
                .get(&from)
                .is_some_and(|r| r.history.stamp() > self.history.stamp())
        {
            self.pull_all(ctx);
        }
        Ok(())
    }

    /// Adopts what the reports confirm, if anything.
    fn confirm(&mut self, ctx: &mut MCtx<'_>) -> Result<(), String> {
        if self.role() == Role::Displaced {
            return Ok(());
        }
        let own_vote = self
            .acceptor
            .accepted
            .as_ref()
            .map(|(ballot, layout)| (self.acceptor.version, *ballot, layout.clone()));
        match confirm::confirm(&self.history, self.me, own_vote.as_ref(), &self.reports) {
            Some(next) => self.adopt(ctx, next),
            None => Ok(()),
        }
    }

    /// Asks every member of both layouts for its report, and gives it this node's own
    /// (its vote may be what the others lack), at most once per resend interval:
    /// confirming a newer layout takes a majority of them.
    fn pull_all(&mut self, ctx: &mut MCtx<'_>) {
        let due = self
            .last_pull_all_ms
            .is_none_or(|last| ctx.now_ms >= last.saturating_add(self.settings.resend_interval_ms));
        if !due {
            return;
        }
        self.last_pull_all_ms = Some(ctx.now_ms);
        let mut members = self.history.members();
        if self.history.committed().version() == 0 {
            // Joining: ask the members of the layouts that were reported.
            for report in self.reports.values() {
                members.extend(report.history.committed().nodes().keys().copied());
            }
        }
        let mine = (self.role() == Role::Member).then(|| self.report());
        for to in members {
            if to != self.me {
                ctx.out.send(
                    to,
                    PeerMessage::LayoutPull {
                        epoch: self.epoch(),
                    },
                );
                if let Some(report) = &mine {
                    ctx.out.send(to, report.clone());
                }
            }
        }
    }

    /// Makes `next` this node's history: durably first, then everything that follows.
    fn adopt(&mut self, ctx: &mut MCtx<'_>, next: LayoutHistory) -> Result<(), String> {
        meta::write_history(ctx.engine, &next)?;
        let before = std::mem::replace(&mut self.history, next);
        self.note_change(ctx.now_ms, &before);
        self.changed = true;
        if self.history.committed().version() > 0 {
            // Bounded by the members from now on.
            let history = &self.history;
            self.reports.retain(|id, _| history.is_member(*id));
        }
        self.resolve_proposal(ctx);
        self.resolve_abort(ctx);
        self.refresh_sync(ctx.now_ms);
        // A finished sync may already be due (nothing to pull).
        self.check_sync_done(ctx)
    }

    /// Bookkeeping after the history moved on from `before`: when the pending change
    /// began here, how the previous one ended.
    fn note_change(&mut self, now_ms: u64, before: &LayoutHistory) {
        self.note_outcome(before);
        self.pending_since = match (self.history.pending(), self.pending_since) {
            (Some(p), Some((v, since))) if v == p.version() => Some((v, since)),
            (Some(p), _) => {
                let timeout_ms = self.settings.change_timeout_ms;
                self.stuck_check_ms = (timeout_ms > 0).then(|| now_ms.saturating_add(timeout_ms));
                Some((p.version(), now_ms))
            }
            (None, _) => {
                self.stuck_check_ms = None;
                None
            }
        };
    }

    // Guards would hide the acceptor checks' side effects (they answer the sender).
    #[allow(clippy::collapsible_match)]
    pub fn on_message(
        &mut self,
        ctx: &mut MCtx<'_>,
        from: NodeId,
        message: PeerMessage,
    ) -> Result<Event, String> {
        match message {
            PeerMessage::Layout(report) => self.learn_report(ctx, from, *report)?,
            PeerMessage::LayoutPull { .. } => {
                if self.role() != Role::Joining {
                    ctx.out.send(from, self.report());
                }
            }
            PeerMessage::LayoutPrepare { version, ballot } => {
                if self.acceptor_ready(ctx, from, version) {
                    self.round = self.round.max(ballot.round);
                    let (answer, changed) = self.acceptor.on_prepare(version, ballot);
                    self.answer_as_acceptor(ctx, from, answer, changed)?;
                }
            }
            PeerMessage::LayoutAccept {
                version,
                ballot,
                layout,
            } => {
                // Only a one-member change of the committed layout is ever voted for: a
                // proposer (any member) cannot get a whole new ring chosen.
                let valid = layout.version() == version
                    && confirm::is_one_change(self.history.committed(), &layout);
                if valid && self.acceptor_ready(ctx, from, version) {
                    self.round = self.round.max(ballot.round);
                    let (answer, changed) = self.acceptor.on_accept(version, ballot, layout);
                    self.answer_as_acceptor(ctx, from, answer, changed)?;
                }
            }
            answer @ (PeerMessage::LayoutPromise { .. }
            | PeerMessage::LayoutAccepted { .. }
            | PeerMessage::LayoutNack { .. }) => self.on_acceptor_answer(ctx, from, answer)?,
            PeerMessage::SyncPull { epoch, cursor } => self.serve_pull(ctx, from, epoch, cursor)?,
            PeerMessage::SyncBehind { epoch, .. } => {
                if epoch == self.epoch() {
                    ctx.out.send(from, self.report());
                }
            }
            PeerMessage::SyncPage(page) => {
                let expected = self.sync.as_ref().and_then(|job| {
                    let source = job.sources.get(&from)?;
                    let cursor = crate::protocol::cursor_digest(source.cursor.as_ref());
                    (job.wiped && job.epoch == page.epoch && !source.done && cursor == page.cursor)
                        .then_some(())
                });
                if expected.is_some() {
                    self.counters.sync_pages_received += 1;
                    return Ok(Event::Apply { from, page });
                }
            }
            _ => {}
        }
        Ok(Event::Nothing)
    }

    /// The node applied a page from `from`: pull the next one, or count the source done.
    pub fn page_applied(
        &mut self,
        ctx: &mut MCtx<'_>,
        from: NodeId,
        page: &SyncPage,
    ) -> Result<(), String> {
        let resend_ms = self.settings.resend_interval_ms;
        let Some(job) = self.sync.as_mut() else {
            return Ok(());
        };
        let Some(source) = job.sources.get_mut(&from) else {
            return Ok(());
        };
        job.entries_applied += page.entries.len() as u64;
        self.counters.sync_entries_applied += page.entries.len() as u64;
        source.pages += 1;
        match &page.next {
            None => source.done = true,
            Some(next) => {
                source.cursor = Some(next.clone());
                source.next_send_ms = ctx.now_ms.saturating_add(resend_ms);
                ctx.out.send(
                    from,
                    PeerMessage::SyncPull {
                        epoch: job.epoch,
                        cursor: Some(next.clone()),
                    },
                );
            }
        }
        self.check_sync_done(ctx)
    }

    /// The node could not apply `from`'s page (`reason`: an entry over its limits): that
    /// source is never counted read, so this node's sync fails loudly (status) instead
    /// of completing without the entry.
    pub fn sync_refused(&mut self, from: NodeId, reason: String) {
        let Some(source) = self
            .sync
            .as_mut()
            .and_then(|job| job.sources.get_mut(&from))
        else {
            return;
        };
        self.counters.sync_pages_refused += 1;
        source.done = false;
        source.next_send_ms = u64::MAX;
        source.refused = Some(format!("from {from}: {reason}"));
    }

    /// While a change is pending here and a member of the committed layout reports an
    /// older epoch, proposes the pending layout again (at most once per four request
    /// timeouts): Paxos re-chooses the same layout (it is chosen) with a majority that
    /// now includes members that did not know it, whose votes then teach them.
    fn spread_pending(&mut self, ctx: &mut MCtx<'_>) {
        let Some(pending) = self.history.pending() else {
            return;
        };
        let due = self.last_spread_ms.is_none_or(|last| {
            ctx.now_ms >= last.saturating_add(self.settings.request_timeout_ms.saturating_mul(4))
        });
        if !due || self.proposal.is_some() || self.role() != Role::Member {
            return;
        }
        let version = pending.version();
        // Only members up to hear it (a dead one's last report stays old).
        let unaware = self.history.committed().nodes().keys().any(|id| {
            ctx.detector.believed_alive(*id, ctx.now_ms)
                && self
                    .reports
                    .get(id)
                    .is_some_and(|report| report.history.epoch() < version)
        });
        if unaware {
            self.last_spread_ms = Some(ctx.now_ms);
            let pending = pending.clone();
            self.propose(ctx, None, pending);
        }
    }

    /// Resends overdue pulls and proposal messages; gives up an expired proposal.
    pub fn on_timers(&mut self, ctx: &mut MCtx<'_>) -> Result<(), String> {
        self.fence_if_stuck(ctx)?;
        self.spread_pending(ctx);
        self.repropose_unlearned_vote(ctx);
        self.resolve_abort(ctx);
        let resend_ms = self.settings.resend_interval_ms;
        if let Some(job) = self.sync.as_mut().filter(|job| !job.wiped) {
            // Before the first pull (sync.rs, `wipe_gained`).
            let dropped = wipe_gained(ctx.engine, job, self.me).map_err(|e| e.to_string())?;
            job.wiped = true;
            job.wiped_records = dropped;
            self.counters.sync_stale_dropped += dropped;
        }
        if let Some(job) = self.sync.as_mut() {
            for (id, source) in job.sources.iter_mut().filter(|(_, s)| !s.done) {
                if ctx.now_ms >= source.next_send_ms {
                    source.next_send_ms = ctx.now_ms.saturating_add(resend_ms);
                    ctx.out.send(
                        *id,
                        PeerMessage::SyncPull {
                            epoch: job.epoch,
                            cursor: source.cursor.clone(),
                        },
                    );
                }
            }
        }
        let Some(mut proposal) = self.proposal.take() else {
            return Ok(());
        };
        if ctx.now_ms >= proposal.deadline_ms {
            let error = if proposal.accept_sent {
                ClientError::Indeterminate {
                    reason: format!(
                        "the change to layout version {} was not confirmed by a majority of \
                         members in time; it may still be chosen",
                        proposal.version
                    ),
                }
            } else {
                ClientError::Unavailable {
                    reason: format!(
                        "a majority of the {} members did not answer the proposal for layout \
                         version {} in time; nothing changed",
                        proposal.acceptors.len(),
                        proposal.version
                    ),
                }
            };
            self.counters.changes_failed += 1;
            answer_client(ctx, proposal.client, ClientReply::Error(error));
            return Ok(());
        }
        if ctx.now_ms >= proposal.next_resend_ms {
            proposal.next_resend_ms = ctx.now_ms.saturating_add(resend_ms);
            let message = proposal.message();
            for to in proposal.pending() {
                ctx.out.send(to, message.clone());
            }
        }
        self.proposal = Some(proposal);
        Ok(())
    }

    /// A vote for version committed + 1 that stays unlearned for `change_timeout_ms`
    /// (plus this member's rank times the resend interval, so that voters do not duel):
    /// proposes the voted layout again, as a member holding a pending change does.
    ///
    /// Why: a change can be chosen by a bare majority whose proposer committed at once
    /// (so no member holds it pending) and one of whose voters was then lost. The live
    /// voters are then one short of the majority of reports that confirms it, and the
    /// members that did not vote cannot learn it; every later change waits forever. A
    /// new Paxos round over the live members finds the vote in its promises and drives
    /// that same layout to a majority of votes, which the others then confirm (seed
    /// 694 of the shard mix). Safe whatever was chosen: a proposer adopts the
    /// highest-ballot vote its promises carry (`paxos.rs`), so a round can only choose
    /// again what may have been chosen.
    fn repropose_unlearned_vote(&mut self, ctx: &mut MCtx<'_>) {
        if self.proposal.is_some() || !self.holds_unlearned_vote() {
            self.unlearned_vote_since_ms = None;
            return;
        }
        let since_ms = *self.unlearned_vote_since_ms.get_or_insert(ctx.now_ms);
        let rank = self
            .history
            .committed()
            .nodes()
            .keys()
            .position(|id| *id == self.me)
            .unwrap_or(0) as u64;
        let due_ms = since_ms
            .saturating_add(self.settings.change_timeout_ms)
            .saturating_add(rank.saturating_mul(self.settings.resend_interval_ms));
        if ctx.now_ms < due_ms {
            return;
        }
        let Some((_, voted)) = self.acceptor.accepted.clone() else {
            return;
        };
        // The next attempt, if this one does not end it, after another full wait.
        self.unlearned_vote_since_ms = Some(ctx.now_ms);
        self.propose(ctx, None, voted);
    }

    /// An admin request: validates it and starts a proposal for the next version.
    pub fn on_admin(
        &mut self,
        ctx: &mut MCtx<'_>,
        client: RequestId,
        request: AdminRequest,
    ) -> Result<(), String> {
        if let AdminRequest::Abort = request {
            return self.on_abort(ctx, client, BTreeSet::new(), None);
        }
        if let AdminRequest::ForceRemove(id) = request {
            // A member of the pending change that has not synced, gone for good: the
            // change is aborted (`ring/history.rs`, "gone"); a joiner is then out, a
            // member of the layout before is removed next.
            let waited_for = self
                .history
                .pending()
                .is_some_and(|pending| pending.node(id).is_some())
                && !self.history.synced().contains(&id);
            if waited_for {
                let then = self
                    .history
                    .committed()
                    .node(id)
                    .is_some()
                    .then_some(AdminRequest::ForceRemove(id));
                return self.on_abort(ctx, client, BTreeSet::from([id]), then);
            }
        }
        match self.desired(ctx, &request) {
            Err(error) => ctx.out.reply(client, ClientReply::Error(error)),
            Ok(None) => ctx.out.reply(client, ClientReply::Done),
            Ok(Some(desired)) => self.propose(ctx, Some(client), desired),
        }
        Ok(())
    }

    /// An admin `Abort`: fences the pending change; answered once it ended (`Done`:
    /// aborted) or after twice the request timeout.
    fn on_abort(
        &mut self,
        ctx: &mut MCtx<'_>,
        client: RequestId,
        gone: BTreeSet<NodeId>,
        then: Option<AdminRequest>,
    ) -> Result<(), String> {
        let refuse = |reason: String| ClientReply::Error(ClientError::Unsupported { reason });
        if self.role() != Role::Member {
            let reply = ClientReply::Error(ClientError::Unavailable {
                reason: "this node is not a member of a cluster".into(),
            });
            ctx.out.reply(client, reply);
            return Ok(());
        }
        let Some(version) = self.history.pending().map(RingLayout::version) else {
            let reason = "no membership change is in progress: nothing to abort".into();
            ctx.out.reply(client, refuse(reason));
            return Ok(());
        };
        if let Some((earlier, _, _, _)) = self.abort_client.take() {
            ctx.out.reply(
                earlier,
                ClientReply::Error(ClientError::Unavailable {
                    reason: "superseded by a later abort request".into(),
                }),
            );
        }
        let deadline_ms = ctx
            .now_ms
            .saturating_add(self.settings.request_timeout_ms.saturating_mul(2));
        self.abort_client = Some((client, version, deadline_ms, then));
        if let Err(error) = self.fence(ctx, gone) {
            if let Some((client, _, _, _)) = self.abort_client.take() {
                ctx.out.reply(
                    client,
                    ClientReply::Error(ClientError::Unavailable {
                        reason: format!("could not persist the fence: {error}"),
                    }),
                );
            }
            return Err(error);
        }
        self.resolve_abort(ctx);
        Ok(())
    }

    /// Proposes the committed layout's purge change (`RingLayout::purged`), if no change
    /// is pending or being proposed here. The caller holds every member's confirmation
    /// for the committed version (`node/purge/`). Whether it is chosen shows in the
    /// history.
    pub fn propose_purge(&mut self, ctx: &mut MCtx<'_>) -> bool {
        let idle = self.role() == Role::Member
            && self.history.pending().is_none()
            && self.proposal.is_none();
        match self.history.committed().purged() {
            Ok(desired) if idle => {
                self.propose(ctx, None, desired);
                true
            }
            _ => false,
        }
    }

    fn propose(&mut self, ctx: &mut MCtx<'_>, client: Option<RequestId>, desired: RingLayout) {
        self.counters.changes_proposed += 1;
        self.round = self.round.saturating_add(1);
        let proposal = Proposal {
            client,
            version: desired.version(),
            desired,
            ballot: Ballot {
                round: self.round,
                node: self.me,
            },
            acceptors: self.history.committed().nodes().keys().copied().collect(),
            phase: ProposalPhase::Prepare {
                promises: BTreeMap::new(),
            },
            deadline_ms: ctx
                .now_ms
                .saturating_add(self.settings.request_timeout_ms.saturating_mul(2)),
            next_resend_ms: ctx.now_ms.saturating_add(self.settings.resend_interval_ms),
            attempts: 0,
            accept_sent: false,
            mutations: self.settings.mutations,
        };
        let message = proposal.message();
        for to in &proposal.acceptors {
            ctx.out.send(*to, message.clone());
        }
        self.proposal = Some(proposal);
    }

    /// The layout the request asks for (`None`: already so), or why not now.
    fn desired(
        &self,
        ctx: &MCtx<'_>,
        request: &AdminRequest,
    ) -> Result<Option<RingLayout>, ClientError> {
        let unavailable = |reason: String| ClientError::Unavailable { reason };
        match self.role() {
            Role::Joining => {
                return Err(unavailable(
                    "this node is not a member of a cluster yet".into(),
                ))
            }
            Role::Left => return Err(unavailable("this node has left the cluster".into())),
            Role::Displaced => return Err(unavailable(displaced_reason(self.me))),
            Role::Member => {}
        }
        if let Some(pending) = self.history.pending() {
            return Err(unavailable(format!(
                "the change to layout version {} is still moving data ({} members synced); \
                 retry when it completes",
                pending.version(),
                self.history.synced().len()
            )));
        }
        if self.proposal.is_some() {
            return Err(unavailable(
                "this node is already proposing a membership change; retry".into(),
            ));
        }
        let committed = self.history.committed();
        let unsupported = |reason: String| ClientError::Unsupported { reason };
        let next = match request {
            AdminRequest::Join(spec) => committed.with_node(joined_spec(committed, spec)?),
            AdminRequest::Leave(id) => committed.without_node(*id),
            AdminRequest::Remove(id) => {
                self.removable(ctx, *id, false)?;
                committed.without_node(*id)
            }
            AdminRequest::ForceRemove(id) => {
                self.removable(ctx, *id, true)?;
                committed.without_node(*id)
            }
            AdminRequest::Abort => return Ok(None),
            AdminRequest::Rehome {
                id,
                address,
                secret,
            } => {
                let spec = committed
                    .node(*id)
                    .ok_or_else(|| unsupported(format!("{id} is not a member")))?;
                if spec.identity != Some(IdentityDigest::of(secret)) {
                    return Err(unsupported(format!(
                        "{id} can be moved only with its identity secret"
                    )));
                }
                committed.with_node(spec.clone().with_address(address.clone()))
            }
        }
        .map_err(|error| unsupported(error.to_string()))?;
        if next.version() == committed.version() {
            return Ok(None);
        }
        if next.token_holder_count() == 0 {
            return Err(ClientError::Unsupported {
                reason: "the change would leave no node holding data".into(),
            });
        }
        Ok(Some(next))
    }

    /// Whether removing `id` now can complete without losing an acknowledged write,
    /// judged by who this node believes alive. A live member streams its own ranges
    /// out. For a dead one, each of its ranges must be rebuilt from the other replicas
    /// (`range_readable`): from a majority of the range's replicas alive, or — only
    /// with `force` — from every other replica, all alive, when they are fewer (N = 2).
    /// Refused, naming the range, when a range would have no live copy left or would
    /// wait for another dead replica.
    fn removable(&self, ctx: &MCtx<'_>, id: NodeId, force: bool) -> Result<(), ClientError> {
        let committed = self.history.committed();
        let alive = |n: NodeId| n == self.me || ctx.detector.believed_alive(n, ctx.now_ms);
        if committed.node(id).is_none() || alive(id) {
            return Ok(());
        }
        let refuse = |reason: String| Err(ClientError::Unsupported { reason });
        for (range, owners) in committed.segments() {
            if !owners.contains(&id) {
                continue;
            }
            let others: Vec<NodeId> = owners.iter().copied().filter(|n| *n != id).collect();
            let down: Vec<NodeId> = others.iter().copied().filter(|n| !alive(*n)).collect();
            let live = others.len() - down.len();
            if live == 0 {
                let why = if others.is_empty() {
                    format!("{id} is its only replica")
                } else {
                    format!("its other replicas {} are down too", names(down.iter()))
                };
                return refuse(format!(
                    "removing {id} would lose the last copy of range {range}: {why}; bring \
                     one of them back first"
                ));
            }
            let majority = live * 2 > owners.len();
            if !majority && !down.is_empty() {
                return refuse(format!(
                    "{id} is down and range {range} has only {} of its replicas up; its \
                     replica {} is down too: the removal would wait for it — bring it back \
                     first",
                    names(others.iter().filter(|n| alive(**n))),
                    names(down.iter()),
                ));
            }
            if !majority && !force {
                return refuse(format!(
                    "{id} is down and range {range} (replicas {}) would be rebuilt from \
                     fewer than a majority of its replicas ({} up): that needs --force \
                     (writes only {id} held in eventual mode, and the hints it held, are \
                     lost)",
                    names(owners.iter()),
                    names(others.iter()),
                ));
            }
        }
        Ok(())
    }

    /// Whether this node can vote on `version` now; if not, tells `from` what it knows.
    fn acceptor_ready(&mut self, ctx: &mut MCtx<'_>, from: NodeId, version: u64) -> bool {
        let committed = self.history.committed().version();
        if committed == 0 || self.role() == Role::Displaced {
            return false;
        }
        // A change this node holds pending (chosen, not committed) it still answers as
        // an acceptor, with its vote: a proposer that does not know the change then
        // learns it by Paxos, where reports cannot teach it (too few of the voters that
        // know it are left to make a majority; simulator seed 1221).
        let pending_here = self
            .history
            .pending()
            .is_some_and(|p| p.version() == version);
        if version <= self.epoch() && !pending_here {
            // Already decided here: the proposer learns the outcome.
            ctx.out.send(from, self.report());
            return false;
        }
        if version > committed.saturating_add(1) {
            self.pull(ctx, from);
            return false;
        }
        true
    }

    fn answer_as_acceptor(
        &mut self,
        ctx: &mut MCtx<'_>,
        to: NodeId,
        answer: PeerMessage,
        changed: bool,
    ) -> Result<(), String> {
        if changed {
            meta::write_paxos(ctx.engine, &self.acceptor.record())?;
        }
        ctx.out.send(to, answer);
        Ok(())
    }

    fn on_acceptor_answer(
        &mut self,
        ctx: &mut MCtx<'_>,
        from: NodeId,
        answer: PeerMessage,
    ) -> Result<(), String> {
        let Some(mut proposal) = self.proposal.take() else {
            return Ok(());
        };
        let version = match &answer {
            PeerMessage::LayoutPromise { version, .. }
            | PeerMessage::LayoutAccepted { version, .. }
            | PeerMessage::LayoutNack { version, .. } => *version,
            _ => 0,
        };
        if version != proposal.version {
            self.proposal = Some(proposal);
            return Ok(());
        }
        if let PeerMessage::LayoutNack { promised, .. } = &answer {
            self.round = self.round.max(promised.round);
        }
        match proposal.on_answer(from, answer) {
            Step::Wait => self.proposal = Some(proposal),
            Step::Send(message) => {
                proposal.next_resend_ms =
                    ctx.now_ms.saturating_add(self.settings.resend_interval_ms);
                for to in &proposal.acceptors {
                    ctx.out.send(*to, message.clone());
                }
                self.round = self.round.max(proposal.ballot.round);
                self.proposal = Some(proposal);
            }
            Step::GiveUp => {
                self.counters.changes_failed += 1;
                let reason = format!(
                    "other proposals for layout version {} kept winning; retry",
                    proposal.version
                );
                let error = if proposal.accept_sent {
                    ClientError::Indeterminate { reason }
                } else {
                    ClientError::Unavailable { reason }
                };
                answer_client(ctx, proposal.client, ClientReply::Error(error));
            }
            Step::Chosen(value) => {
                self.counters.changes_chosen += 1;
                self.proposal = Some(proposal);
                let mut next = self.history.clone();
                next.begin(value).map_err(|error| error.to_string())?;
                self.adopt(ctx, next)?;
                // Everyone in either layout hears of it now, not a gossip round later.
                self.broadcast(ctx);
            }
        }
        Ok(())
    }

    /// The history reached or passed the proposal's version: answer its client.
    fn resolve_proposal(&mut self, ctx: &mut MCtx<'_>) {
        let Some(proposal) = self.proposal.as_ref() else {
            return;
        };
        if self.epoch() < proposal.version {
            return;
        }
        let decided = match self.history.pending() {
            Some(pending) if pending.version() == proposal.version => Some(pending),
            _ if self.history.committed().version() == proposal.version => {
                Some(self.history.committed())
            }
            _ => None,
        };
        let ours = decided.is_some_and(|layout| *layout == proposal.desired);
        let reply = if ours {
            ClientReply::Done
        } else {
            ClientReply::Error(ClientError::Unavailable {
                reason: format!(
                    "a different membership change was chosen for layout version {}; \
                     this one was not made (retry)",
                    proposal.version
                ),
            })
        };
        answer_client(ctx, proposal.client, reply);
        self.proposal = None;
    }

    fn serve_pull(
        &mut self,
        ctx: &mut MCtx<'_>,
        from: NodeId,
        epoch: u64,
        cursor: Option<crate::protocol::SyncCursor>,
    ) -> Result<(), String> {
        let mine = self.epoch();
        if mine < epoch {
            ctx.out.send(
                from,
                PeerMessage::SyncBehind {
                    epoch,
                    source_epoch: mine,
                },
            );
            return Ok(());
        }
        if mine > epoch || self.history.pending().is_none() || self.fenced() {
            // A fenced source serves no more streams: its fence names every member it
            // served a whole one to, and nothing may be added to that.
            ctx.out.send(from, self.report());
            return Ok(());
        }
        let ranges = stream_ranges(&self.history, self.me, from);
        let page = build_page(ctx.engine, epoch, &ranges, cursor).map_err(|e| e.to_string())?;
        if page.next.is_none() && !self.served_at(epoch).contains(&from) {
            // The last page may complete `from`'s sync: recorded before it leaves.
            let mut served = self.served_at(epoch);
            served.insert(from);
            meta::write_sync_served(ctx.engine, epoch, &served)?;
            self.served = (epoch, served);
        }
        self.counters.sync_pages_served += 1;
        ctx.out.send(from, PeerMessage::SyncPage(page));
        Ok(())
    }

    /// Starts, keeps or drops this node's sync job to match the history.
    fn refresh_sync(&mut self, now_ms: u64) {
        let wanted = self
            .history
            .pending()
            .is_some_and(|p| p.node(self.me).is_some())
            && !self.history.claims().contains(&self.me)
            && !self.fenced()
            && self.role() == Role::Member;
        if !wanted {
            self.sync = None;
            return;
        }
        if self
            .sync
            .as_ref()
            .is_none_or(|job| job.epoch != self.epoch())
        {
            self.sync = Some(SyncJob::new(&self.history, self.me, now_ms));
        }
    }

    /// Sends the history to every other member of either layout.
    fn broadcast(&self, ctx: &mut MCtx<'_>) {
        for to in self.history.members() {
            if to != self.me {
                ctx.out.send(to, self.report());
            }
        }
    }

    fn check_sync_done(&mut self, ctx: &mut MCtx<'_>) -> Result<(), String> {
        let done = self.sync.as_ref().is_some_and(|job| job.complete(self.me));
        if !done {
            return Ok(());
        }
        let mut next = self.history.clone();
        if next.hold_claim(self.me, self.me) {
            // The job stays until the history is durable: a failed write is retried
            // by the next page or resend, not forgotten.
            meta::write_history(ctx.engine, &next)?;
            self.sync = None;
            let before = std::mem::replace(&mut self.history, next);
            self.note_change(ctx.now_ms, &before);
            self.changed = true;
            self.resolve_proposal(ctx);
            self.resolve_abort(ctx);
            self.broadcast(ctx);
            // Held by a majority already (this node alone, in a layout of one).
            self.confirm(ctx)?;
        }
        Ok(())
    }

    pub fn status(&self, now_ms: u64) -> MembershipStatus {
        let committed = self.history.committed();
        let (joining, leaving) = match self.history.pending() {
            None => (Vec::new(), Vec::new()),
            Some(pending) => (
                pending
                    .nodes()
                    .keys()
                    .filter(|id| committed.node(**id).is_none())
                    .copied()
                    .collect(),
                committed
                    .nodes()
                    .keys()
                    .filter(|id| pending.node(**id).is_none())
                    .copied()
                    .collect(),
            ),
        };
        MembershipStatus {
            role: self.role(),
            epoch: self.epoch(),
            committed_version: committed.version(),
            pending_version: self.history.pending().map(RingLayout::version),
            joining,
            leaving,
            synced: self.history.synced().iter().copied().collect(),
            moved_ranges: self.history.moved().len(),
            pending_age_ms: self
                .pending_since
                .filter(|_| self.history.pending().is_some())
                .map(|(_, since)| now_ms.saturating_sub(since)),
            fenced: self.history.fences().keys().copied().collect(),
            sync: self.sync.as_ref().map(|job| SyncStatus {
                epoch: job.epoch,
                ranges: job.needs.len(),
                sources: job.sources.len(),
                sources_done: job.sources_done(),
                entries_applied: job.entries_applied,
                refused: job
                    .sources
                    .values()
                    .filter_map(|source| source.refused.clone())
                    .collect(),
            }),
            proposing: self.proposal.is_some(),
            counters: self.counters,
        }
    }
}

/// `n1, n2` for messages.
fn names<'a>(ids: impl Iterator<Item = &'a NodeId>) -> String {
    ids.map(NodeId::to_string).collect::<Vec<_>>().join(", ")
}

/// Answers a proposal's client, if a client asked for it.
fn answer_client(ctx: &mut MCtx<'_>, client: Option<RequestId>, reply: ClientReply) {
    if let Some(client) = client {
        ctx.out.reply(client, reply);
    }
}

/// Why a displaced node refuses everything (`Role::Displaced`).
pub(crate) fn displaced_reason(me: NodeId) -> String {
    format!(
        "this node's store is not member {me}'s: the cluster bound {me} to another store's \
         identity (this one lost its data, or took another node's id); it must rejoin \
         under a new id"
    )
}

/// The spec a `Join` asks for, checked against the member of the same id, if any: a
/// member bound to an identity keeps it (a join without one, e.g. a zone change from
/// the CLI, inherits it) and its address (moving it needs its secret: `Rehome`); an
/// unbound member stays unbound. A member keeps its process too (a join naming none
/// inherits it): its store lives in that process, so a spec that moved it elsewhere
/// would let placement put a second replica of a key beside it.
fn joined_spec(committed: &RingLayout, spec: &NodeSpec) -> Result<NodeSpec, ClientError> {
    let Some(existing) = committed.node(spec.id) else {
        return Ok(spec.clone());
    };
    let refuse = |reason: String| Err(ClientError::Unsupported { reason });
    let id = spec.id;
    if spec.process.is_some() && spec.process != existing.process {
        let from = existing
            .process
            .map_or_else(|| "its own".to_string(), |p| p.to_string());
        return refuse(format!(
            "member {id} runs in process {from}: a member never moves to another process \
             (remove {id}, then join under a new id)"
        ));
    }
    let spec = &NodeSpec {
        process: existing.process,
        ..spec.clone()
    };
    match (existing.identity, spec.identity) {
        (Some(bound), Some(asked)) if bound != asked => refuse(format!(
            "member {id} is bound to another store (identity {bound}, this one {asked}): \
             remove {id}, then join under a new id"
        )),
        (None, Some(_)) => refuse(format!(
            "member {id} is not bound to a store's identity and cannot be taken over by one"
        )),
        (Some(_), _) if spec.address != existing.address => refuse(format!(
            "member {id} is bound to an identity: moving it to another address needs its \
             secret (Rehome)"
        )),
        (bound, _) => Ok(NodeSpec {
            identity: bound,
            ..spec.clone()
        }),
    }
}

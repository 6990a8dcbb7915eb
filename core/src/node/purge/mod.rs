//! Tombstone purge: dropping register tombstones once no older write can come back.
//!
//! A tombstone `(key, T)` may be dropped by a replica only if nothing can later give
//! that replica, or any other, an older value of `key`, and no new write of `key` can
//! get a tag below `T`. Three parts make that hold:
//! - **Tags carry their epoch.** An operation started at layout epoch `e` issues a tag
//!   counter `>= e << 32` (`tags.rs`). So a tombstone with counter `< e << 32` was
//!   written at an epoch before `e`, and the `Write`s, read write-backs and
//!   anti-entropy pushes of that time carry an older epoch: replicas that know `e`
//!   refuse them (the epoch fence; pushes carry the sender's epoch for this).
//! - **A confirmation round per epoch.** Once a node's committed layout is version `E`
//!   (no change pending), it scans its register index. For every tombstone with a
//!   counter `< E << 32` it asks the key's other replicas whether they hold that tag or
//!   a newer one (`PurgeCheck`; they answer only once they know `E`). When every answer
//!   is yes it tells every member (`PurgeReady { epoch: E }`). A replica that held `T`
//!   when asked holds `>= T` from then on; and a tombstone a node receives after its
//!   own scan came from a replica that held it when *it* scanned (the first copy was
//!   written before `E`, when no replica knew `E`), so the union of the scans covers
//!   every such tombstone on every replica.
//! - **A purge change.** The lowest-numbered member not believed dead, holding
//!   `PurgeReady` for `E` from every member of layout `E`, proposes layout `E + 1`: the
//!   same members, `purge_floor = (E << 32) - 1` (`RingLayout::purged`), chosen by Paxos
//!   like any change, if any member holds a tombstone (one written at epoch `E` is a
//!   candidate only from `E + 1` on, so it too needs the change). A replica that adopted it drops tombstones at or below the
//!   floor. A message that could still carry an older value of such a key was sent
//!   before its sender adopted `E + 1`, which was chosen after every replica held the
//!   tombstone; so it carries epoch `E` or older and is refused.
//!
//! A purged key is absent, which reads and shadows the same as the tombstone (no write
//! below the floor is accepted any more), so anti-entropy treats "absent" and "a
//! tombstone at or below the floor" as equal (`ae/repair.rs`). A node that replicated a
//! key in an earlier layout may still hold an older copy of it; should it gain the key
//! again, its sync would read "absent" from sources that purged the tombstone, so a
//! node gaining a range drops its own older records there before it pulls
//! (`membership/sync.rs`, `wipe_gained`). Eventual-mode tombstones (`e/` siblings) are
//! not purged.
//!
//! Costs: one scan of the register index per epoch and member (paged, one page in
//! flight), one `PurgeCheck` entry per candidate tombstone and co-replica, and one
//! layout change per purge round, at most one per `purge_interval_ms` and only when
//! some member holds a candidate.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::protocol::{antientropy::EntryVersion, PeerMessage, PURGE_CHECK_ENTRIES_MAX};
use crate::ring::{epoch_tag_base, LayoutHistory, NodeId, TokenRange};
use crate::storage::Engine;
use crate::versioning::Tag;

use super::ae::index::{self, Kind, PageLimits};
use super::ae::AntiEntropy;
use super::gossip::{FailureDetector, MemberState};
use super::mutations::{Mutation, Mutations};
use super::outbox::Outbox;
use super::replica::{self, read_register};

/// Index entries read per scan step (one step per turn while a round is scanning).
const SCAN_PAGE_ENTRIES: usize = 256;
/// Key bytes read per scan step, except that the first entry is always taken.
const SCAN_PAGE_KEY_BYTES_MAX: usize = 256 << 10;
/// Times a check is sent to a co-replica that does not answer before the round fails.
const CHECK_ATTEMPTS_MAX: u32 = 5;

#[derive(Debug, Clone, Copy)]
pub(crate) struct PurgeSettings {
    /// At most one purge change per this interval, and a failed round is retried
    /// after it. 0 turns purging off.
    pub interval_ms: u64,
    pub resend_interval_ms: u64,
    /// Deliberate bugs (`node/mutations.rs`; none outside the mutation tests).
    pub mutations: Mutations,
}

/// What the purge acts on.
pub(crate) struct PurgeCtx<'a> {
    pub now_ms: u64,
    pub engine: &'a dyn Engine,
    pub out: &'a mut Outbox,
    pub history: &'a LayoutHistory,
    pub detector: &'a FailureDetector,
    pub anti_entropy: &'a mut AntiEntropy,
}

/// What the node must do after a purge step.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PurgeAction {
    Nothing,
    /// Propose the committed layout's purge change (`Membership::propose_purge`).
    Propose,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeStatus {
    /// The committed layout's purge floor: tombstones with a tag counter at or below it
    /// are dropped.
    pub purge_floor: u64,
    /// The epoch of the current confirmation round, if one runs or finished.
    pub round_epoch: Option<u64>,
    /// `scanning`, `checking`, `ready`, `failed` (retried after the interval) or `off`.
    pub round_state: String,
    /// Register tombstones this replica held at its last complete scan.
    pub tombstones_held: u64,
    /// ... of which written before the round's epoch (candidates for the next purge).
    pub tombstones_purgeable: u64,
    /// Tombstones this replica dropped since it opened.
    pub tombstones_purged: u64,
    /// Members whose `PurgeReady` for the committed version this node holds.
    pub ready_members: Vec<NodeId>,
    /// Purge changes this node proposed since it opened.
    pub changes_proposed: u64,
    /// Rounds that failed (a co-replica lacked a tombstone or did not answer).
    pub rounds_failed: u64,
}

#[derive(Debug)]
enum RoundState {
    Scanning,
    /// Waiting for the co-replicas' answers to the last page's checks.
    Checking(Checks),
    Ready,
    Failed,
}

#[derive(Debug)]
struct Checks {
    seq: u64,
    /// The entries each co-replica was asked about and has not answered yet.
    waiting: BTreeMap<NodeId, Vec<(Vec<u8>, Tag)>>,
    attempts: u32,
    next_send_ms: u64,
}

#[derive(Debug)]
struct Round {
    epoch: u64,
    /// The last key scanned (`None`: from the start of the ring).
    after: Option<Vec<u8>>,
    state: RoundState,
    /// Counts over the scan so far.
    held: u64,
    purgeable: u64,
    /// When the round finished (ready or failed), or last announced readiness.
    finished_ms: u64,
    /// Whether this node told the members it is ready (it does once a purge is wanted:
    /// it or a member holds a candidate; a cluster without deletes stays quiet).
    announced: bool,
}

#[derive(Debug)]
pub(crate) struct Purge {
    me: NodeId,
    settings: PurgeSettings,
    round: Option<Round>,
    next_seq: u64,
    /// The latest `PurgeReady` of each member: `(epoch, tombstones held)`.
    ready: BTreeMap<NodeId, (u64, u64)>,
    last_proposed_ms: Option<u64>,
    held: u64,
    purgeable: u64,
    purged: u64,
    changes_proposed: u64,
    rounds_failed: u64,
}

impl Purge {
    pub fn new(me: NodeId, settings: PurgeSettings) -> Self {
        Purge {
            me,
            settings,
            round: None,
            next_seq: 1,
            ready: BTreeMap::new(),
            last_proposed_ms: None,
            held: 0,
            purgeable: 0,
            purged: 0,
            changes_proposed: 0,
            rounds_failed: 0,
        }
    }

    fn enabled(&self) -> bool {
        self.settings.interval_ms > 0
    }

    /// When `on_timers` has work: the next scan step, check resend or round retry.
    pub fn next_timeout_ms(&self) -> Option<u64> {
        if !self.enabled() {
            return None;
        }
        let round = self.round.as_ref()?;
        Some(match &round.state {
            RoundState::Scanning => 0,
            RoundState::Checking(checks) => checks.next_send_ms,
            RoundState::Ready | RoundState::Failed => {
                round.finished_ms.saturating_add(self.settings.interval_ms)
            }
        })
    }

    /// Starts a round when the committed version changed, runs one scan step,
    /// resends overdue checks, retries a failed round and re-announces readiness after
    /// the interval. Returns whether the node should propose a purge change.
    pub fn on_timers(&mut self, ctx: &mut PurgeCtx<'_>) -> Result<PurgeAction, String> {
        if !self.enabled() {
            return Ok(PurgeAction::Nothing);
        }
        let committed = ctx.history.committed().version();
        if ctx.history.pending().is_some() || committed == 0 {
            // Rounds run on a settled layout only; a change starts them over.
            self.round = None;
            return Ok(PurgeAction::Nothing);
        }
        if self
            .round
            .as_ref()
            .is_none_or(|round| round.epoch != committed)
        {
            self.round = Some(Round::new(committed));
        }
        let interval_ms = self.settings.interval_ms;
        let Some(round) = self.round.as_mut() else {
            return Ok(PurgeAction::Nothing);
        };
        match &mut round.state {
            RoundState::Scanning => self.scan_step(ctx)?,
            RoundState::Checking(checks) => {
                if ctx.now_ms >= checks.next_send_ms {
                    if checks.attempts >= CHECK_ATTEMPTS_MAX {
                        self.fail(ctx.now_ms);
                    } else {
                        checks.attempts += 1;
                        checks.next_send_ms =
                            ctx.now_ms.saturating_add(self.settings.resend_interval_ms);
                        for (to, entries) in &checks.waiting {
                            ctx.out.send(
                                *to,
                                PeerMessage::PurgeCheck {
                                    epoch: round.epoch,
                                    seq: checks.seq,
                                    entries: entries.clone(),
                                },
                            );
                        }
                    }
                }
            }
            RoundState::Failed => {
                if ctx.now_ms >= round.finished_ms.saturating_add(interval_ms) {
                    *round = Round::new(committed);
                }
            }
            RoundState::Ready => {
                if ctx.now_ms >= round.finished_ms.saturating_add(interval_ms) {
                    if round.announced {
                        // Members that restarted or missed it hear it again.
                        round.finished_ms = ctx.now_ms;
                        let (epoch, tombstones) = (round.epoch, round.held);
                        announce(ctx, self.me, epoch, tombstones);
                    } else {
                        // Nobody wanted a purge: scan again for tombstones since.
                        *round = Round::new(committed);
                    }
                }
            }
        }
        Ok(self.driver(ctx))
    }

    /// One page of the register index: purges what the floor allows, sends checks for
    /// tombstones written before the round's epoch, or finishes the round.
    fn scan_step(&mut self, ctx: &mut PurgeCtx<'_>) -> Result<(), String> {
        let floor = if self.settings.mutations.has(Mutation::PurgeUnconfirmed) {
            u64::MAX
        } else {
            ctx.history.committed().purge_floor()
        };
        let Some(round) = self.round.as_mut() else {
            return Ok(());
        };
        let limits = PageLimits {
            entries_max: SCAN_PAGE_ENTRIES,
            key_bytes_max: SCAN_PAGE_KEY_BYTES_MAX,
        };
        let (entries, complete) = index::scan_spans(
            ctx.engine,
            Kind::Registers,
            &[TokenRange::FULL],
            round.after.as_deref(),
            limits,
        )
        .map_err(|error| error.to_string())?;
        let base = epoch_tag_base(round.epoch);
        let layout = ctx.history.committed();
        let mut waiting: BTreeMap<NodeId, Vec<(Vec<u8>, Tag)>> = BTreeMap::new();
        for entry in &entries {
            let EntryVersion::Register { tag, tombstone } = entry.version else {
                continue;
            };
            if !tombstone {
                continue;
            }
            let replicas = layout.preference_list(&entry.key);
            if tag.counter <= floor {
                if let Some(removed) = replica::purge_tombstone(ctx.engine, &entry.key, tag, floor)
                    .map_err(|error| error.to_string())?
                {
                    self.purged += 1;
                    ctx.anti_entropy.on_purged(&entry.key, &removed);
                }
                continue;
            }
            round.held += 1;
            // A copy left from a layout where this node replicated the key (or its own
            // write as an old replica that no replica took) is no replica's: nothing
            // reads it, and it is dropped before this node gains the key again
            // (`wipe_gained`). Checked, it could never be confirmed; counted, it gets
            // the next purge change, whose floor drops it.
            if tag.counter < base && replicas.contains(&self.me) {
                round.purgeable += 1;
                for replica in replicas {
                    if replica != self.me {
                        waiting
                            .entry(replica)
                            .or_default()
                            .push((entry.key.clone(), tag));
                    }
                }
            }
        }
        round.after = entries.last().map(|entry| entry.key.clone());
        debug_assert!(waiting.values().all(|e| e.len() <= PURGE_CHECK_ENTRIES_MAX));
        if !waiting.is_empty() {
            let seq = self.next_seq;
            self.next_seq += 1;
            for (to, entries) in &waiting {
                ctx.out.send(
                    *to,
                    PeerMessage::PurgeCheck {
                        epoch: round.epoch,
                        seq,
                        entries: entries.clone(),
                    },
                );
            }
            round.state = RoundState::Checking(Checks {
                seq,
                waiting,
                attempts: 1,
                next_send_ms: ctx.now_ms.saturating_add(self.settings.resend_interval_ms),
            });
        } else if complete || entries.is_empty() {
            self.finish(ctx);
        }
        Ok(())
    }

    /// The scan ended with every check answered yes.
    fn finish(&mut self, ctx: &mut PurgeCtx<'_>) {
        let Some(round) = self.round.as_mut() else {
            return;
        };
        round.state = RoundState::Ready;
        round.finished_ms = ctx.now_ms;
        self.held = round.held;
        self.purgeable = round.purgeable;
        // What counts for the driver is every tombstone held: one written at this
        // epoch becomes a candidate only after the next change, so it needs one too.
        self.ready.insert(self.me, (round.epoch, round.held));
        self.announce_if_wanted(ctx);
    }

    /// Announces a finished round once a purge is wanted at its epoch: this node or a
    /// member that announced holds a tombstone.
    fn announce_if_wanted(&mut self, ctx: &mut PurgeCtx<'_>) {
        let Some(round) = self.round.as_mut() else {
            return;
        };
        let epoch = round.epoch;
        let wanted = self
            .ready
            .values()
            .any(|(at, tombstones)| *at == epoch && *tombstones > 0);
        if matches!(round.state, RoundState::Ready) && !round.announced && wanted {
            round.announced = true;
            round.finished_ms = ctx.now_ms;
            announce(ctx, self.me, epoch, round.held);
        }
    }

    fn fail(&mut self, now_ms: u64) {
        if let Some(round) = self.round.as_mut() {
            round.state = RoundState::Failed;
            round.finished_ms = now_ms;
            self.held = self.held.max(round.held);
            self.rounds_failed += 1;
        }
    }

    /// The lowest-numbered member not believed dead proposes once every member of
    /// the committed layout confirmed it, some tombstone waits, and the interval since
    /// its last proposal passed.
    fn driver(&mut self, ctx: &mut PurgeCtx<'_>) -> PurgeAction {
        let layout = ctx.history.committed();
        let version = layout.version();
        let members = layout.nodes();
        let driver = members
            .keys()
            .copied()
            .find(|id| *id == self.me || ctx.detector.state(*id, ctx.now_ms) != MemberState::Dead);
        let all_ready = members.keys().all(|id| {
            self.ready
                .get(id)
                .is_some_and(|(epoch, _)| *epoch == version)
        });
        let waiting: u64 = members
            .keys()
            .filter_map(|id| self.ready.get(id))
            .map(|(_, tombstones)| *tombstones)
            .sum();
        // At most one purge change per interval: each is an epoch bump, which restarts
        // the operations in flight.
        let due = self
            .last_proposed_ms
            .is_none_or(|last| ctx.now_ms >= last.saturating_add(self.settings.interval_ms));
        if driver == Some(self.me) && all_ready && waiting > 0 && due {
            self.last_proposed_ms = Some(ctx.now_ms);
            self.changes_proposed += 1;
            return PurgeAction::Propose;
        }
        PurgeAction::Nothing
    }

    /// A purge message from a member.
    pub fn on_message(
        &mut self,
        ctx: &mut PurgeCtx<'_>,
        from: NodeId,
        message: PeerMessage,
    ) -> Result<PurgeAction, String> {
        match message {
            PeerMessage::PurgeCheck {
                epoch,
                seq,
                entries,
            } => {
                if ctx.history.epoch() < epoch || entries.len() > PURGE_CHECK_ENTRIES_MAX {
                    // Not answered before this node knows `epoch` (the node pulls the
                    // layout on the newer epoch it saw; the checker resends).
                    return Ok(PurgeAction::Nothing);
                }
                let floor = ctx.history.committed().purge_floor();
                let mut missing = Vec::new();
                for (offset, (key, tag)) in entries.iter().enumerate() {
                    let (stored, _) =
                        read_register(ctx.engine, key).map_err(|error| error.to_string())?;
                    let held = stored >= *tag || (stored == Tag::ZERO && tag.counter <= floor);
                    if !held {
                        missing.push(u32::try_from(offset).unwrap_or(u32::MAX));
                    }
                }
                ctx.out.send(
                    from,
                    PeerMessage::PurgeCheckReply {
                        epoch,
                        seq,
                        missing,
                    },
                );
                Ok(PurgeAction::Nothing)
            }
            PeerMessage::PurgeCheckReply {
                epoch,
                seq,
                missing,
            } => {
                let Some(round) = self.round.as_mut() else {
                    return Ok(PurgeAction::Nothing);
                };
                let RoundState::Checking(checks) = &mut round.state else {
                    return Ok(PurgeAction::Nothing);
                };
                if round.epoch != epoch || checks.seq != seq {
                    return Ok(PurgeAction::Nothing);
                }
                if checks.waiting.remove(&from).is_none() {
                    return Ok(PurgeAction::Nothing);
                }
                if !missing.is_empty() {
                    // Anti-entropy repairs the co-replica; the round is retried.
                    self.fail(ctx.now_ms);
                } else if checks.waiting.is_empty() {
                    round.state = RoundState::Scanning;
                }
                Ok(PurgeAction::Nothing)
            }
            PeerMessage::PurgeReady { epoch, tombstones } => {
                let newer = self
                    .ready
                    .get(&from)
                    .is_none_or(|(known, _)| *known <= epoch);
                if newer && ctx.history.committed().node(from).is_some() {
                    self.ready.insert(from, (epoch, tombstones));
                }
                self.announce_if_wanted(ctx);
                Ok(self.driver(ctx))
            }
            _ => Ok(PurgeAction::Nothing),
        }
    }

    pub fn status(&self, history: &LayoutHistory) -> PurgeStatus {
        let version = history.committed().version();
        let round_state = match self.round.as_ref().map(|round| &round.state) {
            _ if !self.enabled() => "off",
            None => "idle",
            Some(RoundState::Scanning) => "scanning",
            Some(RoundState::Checking(_)) => "checking",
            Some(RoundState::Ready) => "ready",
            Some(RoundState::Failed) => "failed",
        };
        PurgeStatus {
            purge_floor: history.committed().purge_floor(),
            round_epoch: self.round.as_ref().map(|round| round.epoch),
            round_state: round_state.into(),
            tombstones_held: self.held,
            tombstones_purgeable: self.purgeable,
            tombstones_purged: self.purged,
            ready_members: self
                .ready
                .iter()
                .filter(|(_, (epoch, _))| *epoch == version)
                .map(|(id, _)| *id)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            changes_proposed: self.changes_proposed,
            rounds_failed: self.rounds_failed,
        }
    }
}

impl Round {
    fn new(epoch: u64) -> Self {
        Round {
            epoch,
            after: None,
            state: RoundState::Scanning,
            held: 0,
            purgeable: 0,
            finished_ms: 0,
            announced: false,
        }
    }
}

/// Tells every other member of the committed layout that this node is ready.
fn announce(ctx: &mut PurgeCtx<'_>, me: NodeId, epoch: u64, tombstones: u64) {
    for to in ctx.history.committed().nodes().keys() {
        if *to != me {
            ctx.out
                .send(*to, PeerMessage::PurgeReady { epoch, tombstones });
        }
    }
}

//! Anti-entropy in the node: Merkle trees kept current on every register write and
//! every eventual state change, and a periodic exchange with co-replicas that finds and
//! repairs differing keys, so replicas converge after partitions heal without waiting
//! for reads.
//!
//! - `index`: the `p/` and `q/` position indexes (bucket listing without full scans).
//! - `version`: `(tag, tombstone)`, an eventual state's digest, their canonical
//!   encodings and Merkle digests.
//! - `span`, `repair`: the key-page comparison after an exchange.
//! - this file: [`AntiEntropy`], the tree set, the schedule, exchange sessions.
//!
//! Schedule (a sweep): every `anti_entropy_interval_ms`, if no root round is in
//! flight, the node picks the next live (`Alive`) co-replica round-robin (every peer it
//! shares a range with, in id order) and sends the roots of *all* ranges the two share
//! in `⌈shared / 256⌉` [`RootBatch`]es: one round trip compares every shared range.
//! Ranges whose roots match are marked in sync; differing ones are queued (once per
//! range) for a per-range [`Exchange`] descent with that peer, which skips the `Root`
//! step ([`Exchange::start_descent`]). Queued descents start as sessions finish, at
//! most `anti_entropy_concurrent_max` in flight. If buckets differ, the session moves on
//! to key pages (`protocol::antientropy`) over the differing spans and both sides push
//! newer registers; then a second pass of pages over the same spans compares eventual
//! keys (one tree holds both kinds: a bucket's hash is a sum of entry hashes, and the
//! two kinds' digests never coincide), and each side pushes its state for every key
//! whose states differ (`AntiEntropyPushEventual`), merged on arrival. One outstanding
//! message round per session (and for the root round); one unanswered past
//! `request_timeout_ms / 4` is resent up to [`RESENDS_MAX`] times (only while the peer
//! is alive), then dropped; the range comes round again.
//!
//! **Why this is safe for linearizability (ABD).** A push carries a `(tag, value)` the
//! sender read from its engine, which holds only durable writes, and every such pair
//! was produced by a coordinator's phase 2 for that tag (tags are unique per write, so
//! the pair is exactly what that `Write` carried). The receiver applies it through
//! `replica::apply_register`, the `Write` path: iff the tag is greater, durably. So a
//! push is indistinguishable from a delayed duplicate of a `Write` that was already
//! sent, which ABD tolerates by design: registers only move forward, a read that
//! returned tag `t` left a quorum at `>= t` that no push can lower, and a pushed value
//! whose write was `Indeterminate` merely takes effect later, as that outcome allows.
//! Anti-entropy never invents a tag or a value and never writes backwards.
//!
//! **Eventual keys.** A pushed sibling state is one the sender durably holds; merging
//! it is what a replica does with any `EventualMerge` (merges commute, are idempotent
//! and never drop a sibling that the other side has not seen superseded), so a push is
//! a delayed replication message, never a new write.

pub(crate) mod index;
mod repair;
mod span;
mod status;
mod version;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use thiserror::Error;

use crate::antientropy::{
    AntiEntropyError, Exchange, ExchangeId, ExchangeRequest, ExchangeResponse, ExchangeStep,
    MerkleConfig, MerkleSet, RejectReason, RootBatch, RootBatchReply, RootEntry,
    MAX_ROOTS_PER_MESSAGE,
};
use crate::protocol::antientropy::{
    KeyPage, KeyPageReply, KeyVersion, KEY_PAGE_ENTRIES_MAX, KEY_PAGE_KEY_BYTES_MAX,
    KEY_PAGE_SPANS_MAX, PUSH_BYTES_PER_PAGE_MAX,
};
use crate::protocol::PeerMessage;
use crate::rand::SplitMix64;
use crate::ring::{NodeId, RingLayout, TokenRange};
use crate::storage::Engine;
use crate::versioning::Tag;

use super::error::NodeError;
use super::eventual::replica::merge_pushed;
use super::eventual::EventualChange;
use super::gossip::{FailureDetector, MemberState};
use super::outbox::Outbox;
use super::replica::{self, RegisterChange, ReplicaError};
use super::status::NodeCounters;
use super::timers::TimerQueue;

use index::{IndexEntry, IndexError, Kind, PageLimits};
use repair::Action;

pub use status::{AntiEntropyCounters, AntiEntropyStatus, LastExchange, RangeStatus};
pub(crate) use version::{EventualVersion, RegisterVersion};

/// Levels an exchange descends per round trip (fanout 16): at most
/// `1 + ceil(depth / 4)` round trips, 4 for depth 12.
const FANOUT_LOG2: u8 = 4;
/// Times an unanswered step or page is resent before the session is dropped: with the
/// response timeout at `request_timeout_ms / 4`, a peer silent for about
/// `request_timeout_ms` loses the session, as a coordinator's phase would time out.
pub(crate) const RESENDS_MAX: u32 = 4;
/// Mixed into the host's seed for this module's own generator (first-round jitter), so
/// anti-entropy does not shift the gossip generator's sequence.
const SEED_SALT: u64 = 0x6165_2d6a_6974_7465; // "ae-jitte"

const PAGE_LIMITS: PageLimits = PageLimits {
    entries_max: KEY_PAGE_ENTRIES_MAX,
    key_bytes_max: KEY_PAGE_KEY_BYTES_MAX,
};

#[derive(Debug, Error)]
pub(crate) enum AeError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Replica(#[from] ReplicaError),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct AeSettings {
    /// 0: never initiate (still answer peers and keep the trees).
    pub interval_ms: u64,
    pub concurrent_max: usize,
    pub response_timeout_ms: u64,
    pub key_size_bytes_max: usize,
    /// Largest eventual state a replica stores (a push merging past it is dropped).
    pub state_size_bytes_max: usize,
    pub merkle: MerkleConfig,
}

/// What anti-entropy steps act on besides its own state.
pub(crate) struct AeCtx<'a> {
    pub now_ms: u64,
    pub engine: &'a dyn Engine,
    pub out: &'a mut Outbox,
    pub counters: &'a mut NodeCounters,
    pub detector: &'a FailureDetector,
    /// This node's layout epoch (carried by pushes).
    pub epoch: u64,
    /// The committed layout's purge floor: a register tombstone at or below it is the
    /// same as no record (`node/purge/`), in key pages and pushes alike.
    pub purge_floor: u64,
}

#[derive(Debug)]
pub(crate) struct AntiEntropy {
    me: NodeId,
    settings: AeSettings,
    set: MerkleSet,
    /// The set's ranges with their replicas, in the set's order (by range end).
    ranges: Vec<RangeSlot>,
    /// Every node sharing at least one range with this one, ascending: the peers the
    /// root rounds rotate through.
    peers: Vec<NodeId>,
    /// `None` when not initiating.
    next_round_ms: Option<u64>,
    /// Index into `peers` of the next root round's first candidate.
    peer_cursor: usize,
    /// The root round in flight, if any (at most one: bounds batches in flight at
    /// `⌈ranges / 256⌉`).
    root_round: Option<RootRound>,
    /// Ranges found differing, awaiting a session: `(slot, peer)`, each slot at most
    /// once (`queued[slot]`), so the queue never exceeds `ranges.len()`.
    queue: VecDeque<(usize, NodeId)>,
    queued: Vec<bool>,
    /// `incarnation << 32`: ids of this run never match a late response to a previous
    /// run's exchange (the low half counts exchanges).
    id_base: u64,
    next_seq: u64,
    sessions: BTreeMap<ExchangeId, Session>,
    /// One deadline per session: its response timeout.
    timers: TimerQueue<ExchangeId>,
    counters: AntiEntropyCounters,
}

#[derive(Debug, Clone)]
struct RangeSlot {
    range: TokenRange,
    replicas: Vec<NodeId>,
    last_exchange: Option<LastExchange>,
}

/// One root round: the batches sent to `peer` and not yet answered.
#[derive(Debug)]
struct RootRound {
    id: ExchangeId,
    peer: NodeId,
    /// Resends since the last answered part.
    resends: u32,
    /// Unanswered parts: the slots whose roots the part carries, in entry order.
    parts: BTreeMap<u32, Vec<usize>>,
}

#[derive(Debug)]
struct Session {
    peer: NodeId,
    slot: usize,
    range: TokenRange,
    /// Resends since the last progress.
    resends: u32,
    phase: Phase,
}

#[derive(Debug)]
enum Phase {
    /// Descending the trees.
    Compare(Exchange),
    /// Comparing key pages of the differing spans.
    Repair(Repair),
}

#[derive(Debug)]
struct Repair {
    /// Every differing span of the range, in range order.
    spans: Vec<TokenRange>,
    /// The first span not compared to its end; the page in flight starts in it.
    next: usize,
    /// The page in flight: its number, cursor, spans (`spans[next..next + page_spans]`)
    /// and entries, kept to resend it as is and to resolve the reply's offsets.
    page: u32,
    after: Option<Vec<u8>>,
    page_spans: usize,
    entries: Vec<IndexEntry>,
    complete: bool,
    /// The pass: registers first, then eventual keys over the same spans.
    eventual: bool,
}

impl Repair {
    fn page_spans(&self) -> &[TokenRange] {
        let end = self
            .next
            .saturating_add(self.page_spans)
            .min(self.spans.len());
        self.spans.get(self.next..end).unwrap_or(&[])
    }
}

impl AntiEntropy {
    /// Makes sure the position index is complete (`index::ensure`: one `d/` scan for a
    /// store written before it existed), then builds the trees of every range this node
    /// replicates from one scan of `p/`. Anything worth telling the operator goes to
    /// `notes`.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        engine: &dyn Engine,
        layout: &RingLayout,
        me: NodeId,
        incarnation: u64,
        settings: AeSettings,
        rng_seed: u64,
        now_ms: u64,
        notes: &mut Vec<String>,
    ) -> Result<AntiEntropy, NodeError> {
        for kind in Kind::ALL {
            let (index_name, records) = match kind {
                Kind::Registers => ("p/", "d/"),
                Kind::Eventual => ("q/", "e/"),
            };
            let report = index::ensure(engine, kind).map_err(open_error)?;
            if let Some(count) = report.rebuilt.filter(|count| *count > 0) {
                notes.push(format!(
                    "built the position index ({index_name}) for {count} existing records"
                ));
            }
            if report.unreadable > 0 {
                notes.push(format!(
                    "{} unreadable {records} records left out of the position index",
                    report.unreadable
                ));
            }
        }
        let mut set = MerkleSet::new(layout, me, settings.merkle);
        let mut malformed = 0;
        for kind in Kind::ALL {
            malformed += index::for_each(engine, kind, |entry| {
                // `false`: a key outside this node's ranges (data awaiting hand-off):
                // untracked.
                let _ = set.insert(&entry.key, version::entry_digest(&entry.version));
            })
            .map_err(open_error)?;
        }
        if malformed > 0 {
            notes.push(format!(
                "{malformed} malformed position index entries skipped; their buckets \
                 will keep differing"
            ));
        }
        let ranges: Vec<RangeSlot> = set
            .iter()
            .map(|(tree, replicas)| RangeSlot {
                range: tree.range(),
                replicas: replicas.to_vec(),
                last_exchange: None,
            })
            .collect();
        let peers: Vec<NodeId> = ranges
            .iter()
            .flat_map(|slot| slot.replicas.iter().copied())
            .filter(|id| *id != me)
            .collect::<BTreeSet<NodeId>>()
            .into_iter()
            .collect();
        let queued = vec![false; ranges.len()];
        // The first round comes one interval after open (gossip has heard from peers by
        // then), jittered so nodes started together do not exchange in lockstep.
        let mut rng = SplitMix64::new(rng_seed ^ SEED_SALT);
        let next_round_ms = (settings.interval_ms > 0).then(|| {
            now_ms
                .saturating_add(settings.interval_ms)
                .saturating_add(rng.below(settings.interval_ms))
        });
        Ok(AntiEntropy {
            me,
            settings,
            set,
            ranges,
            peers,
            next_round_ms,
            // Nodes start their rotations at different peers.
            peer_cursor: usize::try_from(me.0).unwrap_or(0),
            root_round: None,
            queue: VecDeque::new(),
            queued,
            id_base: incarnation << 32,
            next_seq: 0,
            sessions: BTreeMap::new(),
            timers: TimerQueue::default(),
            counters: AntiEntropyCounters::default(),
        })
    }

    /// The committed layout changed: rebuilds the trees for the new ranges (one scan of
    /// `p/`) and drops exchanges in flight (their trees are gone). Exchange ids keep
    /// counting, so late answers to the dropped ones match nothing.
    pub fn relayout(
        &mut self,
        engine: &dyn Engine,
        layout: &RingLayout,
        now_ms: u64,
        notes: &mut Vec<String>,
    ) -> Result<(), NodeError> {
        let mut fresh = AntiEntropy::open(
            engine,
            layout,
            self.me,
            0,
            self.settings,
            self.next_seq ^ self.id_base,
            now_ms,
            notes,
        )?;
        fresh.id_base = self.id_base;
        fresh.next_seq = self.next_seq;
        fresh.counters = self.counters;
        *self = fresh;
        Ok(())
    }

    /// The earliest of the next round and the session deadlines.
    pub fn next_timeout_ms(&self) -> Option<u64> {
        match (self.next_round_ms, self.timers.next_ms()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A register write took effect on this replica: moves its tree entry.
    pub fn on_applied(&mut self, key: &[u8], change: &RegisterChange) {
        let new = change.new.digest();
        // `false`: the key is in none of this node's ranges; nothing to track.
        let _ = match change.old {
            Some(old) => self.set.update(key, old.digest(), new),
            None => self.set.insert(key, new),
        };
    }

    /// A register tombstone was purged from this replica: its tree entry goes.
    pub fn on_purged(&mut self, key: &[u8], version: &RegisterVersion) {
        let _ = self.set.remove(key, version.digest());
    }

    /// An eventual state changed on this replica: moves its tree entry.
    pub fn on_eventual_applied(&mut self, change: &EventualChange) {
        let new = change.new.digest();
        let _ = match change.old {
            Some(old) => self.set.update(&change.key, old.digest(), new),
            None => self.set.insert(&change.key, new),
        };
    }

    /// Resends or drops overdue sessions and root rounds, starts a root round if one is
    /// due, and queued descents the cap allows. Errs only if storage failed.
    pub fn on_timers(&mut self, ctx: &mut AeCtx<'_>) -> Result<(), AeError> {
        while let Some(id) = self.timers.pop_due(ctx.now_ms) {
            if self.root_round.as_ref().is_some_and(|round| round.id == id) {
                self.root_round_overdue(ctx);
                continue;
            }
            let Some(mut session) = self.sessions.remove(&id) else {
                continue;
            };
            let alive = ctx.detector.state(session.peer, ctx.now_ms) == MemberState::Alive;
            if session.resends >= RESENDS_MAX || !alive {
                self.abandon(id);
                continue;
            }
            session.resends += 1;
            self.counters.resends += 1;
            let resent = match &session.phase {
                Phase::Compare(exchange) => {
                    let requests = self
                        .set
                        .tree(&session.range)
                        .map(|tree| exchange.unanswered(tree));
                    match requests {
                        Some(Ok(requests)) => {
                            for request in requests {
                                ctx.out
                                    .send(session.peer, PeerMessage::AntiEntropy(request));
                            }
                            true
                        }
                        // The tree changed shape (layout change): cannot go on.
                        _ => false,
                    }
                }
                Phase::Repair(repair) => {
                    let page = page_message(id, session.range, repair);
                    ctx.out
                        .send(session.peer, PeerMessage::AntiEntropyKeys(page));
                    true
                }
            };
            if resent {
                self.keep(ctx, id, session);
            } else {
                self.abandon(id);
            }
        }
        self.run_round(ctx);
        self.start_queued(ctx)
    }

    /// One anti-entropy message from `from` (a member).
    pub fn on_message(
        &mut self,
        ctx: &mut AeCtx<'_>,
        from: NodeId,
        message: PeerMessage,
    ) -> Result<(), AeError> {
        let result = match message {
            PeerMessage::AntiEntropyRoots(batch) => {
                self.answer_roots(ctx, from, &batch);
                Ok(())
            }
            PeerMessage::AntiEntropyRootsReply(reply) => {
                self.on_roots_reply(ctx, from, &reply);
                Ok(())
            }
            PeerMessage::AntiEntropy(request) => {
                self.answer_exchange(ctx, from, &request);
                Ok(())
            }
            PeerMessage::AntiEntropyReply(response) => {
                self.on_exchange_response(ctx, from, response)
            }
            PeerMessage::AntiEntropyKeys(page) => self.answer_page(ctx, from, &page),
            PeerMessage::AntiEntropyKeysReply(reply) => self.on_page_reply(ctx, from, reply),
            PeerMessage::AntiEntropyPush {
                epoch,
                key,
                tag,
                value,
            } => {
                if epoch < ctx.epoch {
                    ctx.counters.messages_ignored += 1;
                    return Ok(());
                }
                self.on_push(ctx, from, &key, tag, value)
            }
            PeerMessage::AntiEntropyPushEventual { key, state } => {
                self.on_push_eventual(ctx, from, &key, &state)
            }
            _ => Ok(()),
        };
        result?;
        // A finished or abandoned session, or a root reply, may have freed or queued
        // work: start what the cap allows now rather than at the next round.
        self.start_queued(ctx)
    }

    pub fn status(&self) -> AntiEntropyStatus {
        let ranges: Vec<RangeStatus> = self
            .ranges
            .iter()
            .map(|slot| {
                let tree = self.set.tree(&slot.range);
                RangeStatus {
                    range: slot.range,
                    replicas: slot.replicas.clone(),
                    depth: tree.map_or(0, |tree| tree.depth()),
                    root: tree.map_or(0, |tree| tree.root()),
                    last_exchange: slot.last_exchange,
                }
            })
            .collect();
        let finished: Vec<u64> = ranges
            .iter()
            .filter_map(|range| range.last_exchange.map(|last| last.at_ms))
            .collect();
        AntiEntropyStatus {
            initiating: self.next_round_ms.is_some(),
            tree_memory_bytes: self.set.memory_bytes(),
            exchanges_in_flight: self.sessions.len(),
            ranges_exchanged: finished.len(),
            oldest_exchange_ms: (finished.len() == ranges.len())
                .then(|| finished.iter().min().copied())
                .flatten(),
            counters: self.counters,
            ranges,
        }
    }

    // ---- initiator: schedule -----------------------------------------------------

    /// Starts a root round with the next live co-replica (round-robin), unless one is
    /// still in flight: sends the roots of every range shared with it, in
    /// `⌈shared / 256⌉` batches. Ranges with a session or already queued are left out
    /// (they are being handled). Looks at each peer at most once per round: O(ranges ×
    /// peers) at worst, and starts nothing when every peer is down.
    fn run_round(&mut self, ctx: &mut AeCtx<'_>) {
        match self.next_round_ms {
            Some(due_ms) if due_ms <= ctx.now_ms => {}
            _ => return,
        }
        // A late host gets one round, not a burst of catch-up rounds.
        self.next_round_ms = Some(ctx.now_ms.saturating_add(self.settings.interval_ms));
        if self.root_round.is_some() {
            return;
        }
        for _ in 0..self.peers.len() {
            let Some(peer) = self.peers.get(self.peer_cursor % self.peers.len()).copied() else {
                return;
            };
            self.peer_cursor = self.peer_cursor.wrapping_add(1);
            if ctx.detector.state(peer, ctx.now_ms) != MemberState::Alive {
                continue;
            }
            let busy: BTreeSet<usize> = self.sessions.values().map(|s| s.slot).collect();
            let shared: Vec<usize> = (0..self.ranges.len())
                .filter(|slot| {
                    !busy.contains(slot)
                        && !self.queued.get(*slot).copied().unwrap_or(true)
                        && self
                            .ranges
                            .get(*slot)
                            .is_some_and(|s| s.replicas.contains(&peer))
                })
                .collect();
            if shared.is_empty() {
                continue;
            }
            let id = self.next_id();
            let parts: BTreeMap<u32, Vec<usize>> = (0u32..)
                .zip(shared.chunks(MAX_ROOTS_PER_MESSAGE).map(<[usize]>::to_vec))
                .collect();
            let round = RootRound {
                id,
                peer,
                resends: 0,
                parts,
            };
            self.send_root_parts(ctx, &round);
            self.counters.root_rounds += 1;
            self.timers.schedule(
                id,
                ctx.now_ms.saturating_add(self.settings.response_timeout_ms),
            );
            self.root_round = Some(round);
            return;
        }
    }

    fn next_id(&mut self) -> ExchangeId {
        let id = self.id_base | (self.next_seq & 0xffff_ffff);
        self.next_seq = self.next_seq.wrapping_add(1);
        id
    }

    /// Sends every unanswered part of `round`, with the roots as they are now (the
    /// responder is stateless, so a resent part that was in fact delivered is merely
    /// answered twice and the second reply ignored).
    fn send_root_parts(&mut self, ctx: &mut AeCtx<'_>, round: &RootRound) {
        for (part, slots) in &round.parts {
            let roots = slots
                .iter()
                .filter_map(|slot| {
                    let range = self.ranges.get(*slot)?.range;
                    let tree = self.set.tree(&range)?;
                    Some(RootEntry {
                        range,
                        depth: tree.depth(),
                        root: tree.root(),
                    })
                })
                .collect();
            self.counters.root_batches += 1;
            ctx.out.send(
                round.peer,
                PeerMessage::AntiEntropyRoots(RootBatch {
                    id: round.id,
                    part: *part,
                    roots,
                }),
            );
        }
    }

    /// The root round's deadline passed with parts unanswered: resend them, or drop the
    /// round (peer silent or dead); its ranges come round again with the next rounds.
    fn root_round_overdue(&mut self, ctx: &mut AeCtx<'_>) {
        let Some(mut round) = self.root_round.take() else {
            return;
        };
        let alive = ctx.detector.state(round.peer, ctx.now_ms) == MemberState::Alive;
        if round.resends >= RESENDS_MAX || !alive {
            self.counters.root_rounds_abandoned += 1;
            return;
        }
        round.resends += 1;
        self.counters.resends += 1;
        self.send_root_parts(ctx, &round);
        self.timers.schedule(
            round.id,
            ctx.now_ms.saturating_add(self.settings.response_timeout_ms),
        );
        self.root_round = Some(round);
    }

    /// A reply to one part of the root round: matching ranges are in sync, differing
    /// ones are queued for a descent with the peer, unknown ones skipped (other layout
    /// or config: a descent would be rejected too). A reply that does not match the
    /// round and an unanswered part (late, duplicate, forged) is ignored.
    fn on_roots_reply(&mut self, ctx: &mut AeCtx<'_>, from: NodeId, reply: &RootBatchReply) {
        let Some(round) = self
            .root_round
            .as_mut()
            .filter(|round| round.id == reply.id && round.peer == from)
        else {
            self.counters.stale_responses += 1;
            return;
        };
        let Some(slots) = round.parts.get(&reply.part) else {
            self.counters.stale_responses += 1;
            return;
        };
        let in_range = |offsets: &[u16]| offsets.iter().all(|o| usize::from(*o) < slots.len());
        if !in_range(&reply.differing) || !in_range(&reply.unknown) {
            // Malformed: leave the part unanswered; the resend asks again.
            self.counters.stale_responses += 1;
            return;
        }
        let Some(slots) = round.parts.remove(&reply.part) else {
            return;
        };
        round.resends = 0;
        let finished = round.parts.is_empty();
        let round_id = round.id;
        let differing: BTreeSet<usize> = reply.differing.iter().map(|o| usize::from(*o)).collect();
        let unknown: BTreeSet<usize> = reply.unknown.iter().map(|o| usize::from(*o)).collect();
        for (offset, slot_index) in slots.into_iter().enumerate() {
            self.counters.roots_compared += 1;
            if unknown.contains(&offset) {
                self.counters.roots_unknown += 1;
            } else if differing.contains(&offset) {
                self.counters.roots_differing += 1;
                if let Some(queued) = self.queued.get_mut(slot_index) {
                    if !*queued {
                        *queued = true;
                        self.queue.push_back((slot_index, from));
                    }
                }
            } else if let Some(slot) = self.ranges.get_mut(slot_index) {
                slot.last_exchange = Some(LastExchange {
                    at_ms: ctx.now_ms,
                    peer: from,
                    in_sync: true,
                });
            }
        }
        if finished {
            self.timers.cancel(round_id);
            self.root_round = None;
        } else {
            // Progress: a fresh deadline for the rest.
            self.timers.schedule(
                round_id,
                ctx.now_ms.saturating_add(self.settings.response_timeout_ms),
            );
        }
    }

    /// Starts descents for queued differing ranges while sessions are below the cap.
    /// A range whose peer is no longer alive (or that already has a session) is
    /// dropped from the queue: a later root round finds it again if it still differs.
    fn start_queued(&mut self, ctx: &mut AeCtx<'_>) -> Result<(), AeError> {
        while self.sessions.len() < self.settings.concurrent_max {
            let Some((slot_index, peer)) = self.queue.pop_front() else {
                return Ok(());
            };
            if let Some(queued) = self.queued.get_mut(slot_index) {
                *queued = false;
            }
            if ctx.detector.state(peer, ctx.now_ms) != MemberState::Alive
                || self.sessions.values().any(|s| s.slot == slot_index)
            {
                continue;
            }
            let Some(range) = self.ranges.get(slot_index).map(|slot| slot.range) else {
                continue;
            };
            let id = self.next_id();
            let Some(tree) = self.set.tree(&range) else {
                continue;
            };
            let Ok((exchange, step)) = Exchange::start_descent(tree, id, FANOUT_LOG2) else {
                // Cannot happen for this node's own tree; nothing was sent.
                continue;
            };
            self.counters.exchanges_started += 1;
            let session = Session {
                peer,
                slot: slot_index,
                range,
                resends: 0,
                phase: Phase::Compare(exchange),
            };
            // A storage error listing a page abandons the session (in `send_page`).
            self.proceed(ctx, id, session, step)?;
        }
        Ok(())
    }

    /// (Re)stores a live session with a fresh response deadline.
    fn keep(&mut self, ctx: &AeCtx<'_>, id: ExchangeId, session: Session) {
        self.timers.schedule(
            id,
            ctx.now_ms.saturating_add(self.settings.response_timeout_ms),
        );
        self.sessions.insert(id, session);
    }

    /// Takes the session `id` out if it is `from`'s (its deadline stays armed: put it
    /// back with `put_back`, `keep` it with a new deadline, or `finish`/`abandon` it);
    /// counts a stale response otherwise.
    fn take(&mut self, id: ExchangeId, from: NodeId) -> Option<Session> {
        match self.sessions.get(&id) {
            Some(session) if session.peer == from => self.sessions.remove(&id),
            _ => {
                self.counters.stale_responses += 1;
                None
            }
        }
    }

    /// Puts a session back untouched: no progress, so its deadline stays as it was.
    fn put_back(&mut self, id: ExchangeId, session: Session) {
        self.sessions.insert(id, session);
    }

    fn abandon(&mut self, id: ExchangeId) {
        self.timers.cancel(id);
        self.counters.exchanges_abandoned += 1;
    }

    fn finish(&mut self, ctx: &AeCtx<'_>, id: ExchangeId, session: &Session, in_sync: bool) {
        self.timers.cancel(id);
        if in_sync {
            self.counters.exchanges_in_sync += 1;
        } else {
            self.counters.exchanges_repaired += 1;
        }
        if let Some(slot) = self.ranges.get_mut(session.slot) {
            slot.last_exchange = Some(LastExchange {
                at_ms: ctx.now_ms,
                peer: session.peer,
                in_sync,
            });
        }
    }

    // ---- initiator: exchange and pages ------------------------------------------

    fn on_exchange_response(
        &mut self,
        ctx: &mut AeCtx<'_>,
        from: NodeId,
        response: ExchangeResponse,
    ) -> Result<(), AeError> {
        let id = response.id();
        let Some(mut session) = self.take(id, from) else {
            return Ok(());
        };
        let Phase::Compare(exchange) = &mut session.phase else {
            // A late duplicate from the compare phase of a session now repairing.
            self.counters.stale_responses += 1;
            self.put_back(id, session);
            return Ok(());
        };
        let Some(tree) = self.set.tree(&session.range) else {
            self.abandon(id);
            return Ok(());
        };
        match exchange.on_response(tree, &response) {
            Ok(step) => self.proceed(ctx, id, session, step)?,
            // Not this exchange's response after all (forged or corrupted): ignore.
            Err(AntiEntropyError::WrongExchange { .. } | AntiEntropyError::WrongRange { .. }) => {
                self.counters.stale_responses += 1;
                self.put_back(id, session);
            }
            // Rejected (other layout or Merkle config), malformed, or trees changed.
            Err(_) => self.abandon(id),
        }
        Ok(())
    }

    /// Acts on an exchange step of `session` (taken out of `sessions`): sends and keeps
    /// it, puts it back, finishes it in sync, or moves it on to key pages.
    fn proceed(
        &mut self,
        ctx: &mut AeCtx<'_>,
        id: ExchangeId,
        mut session: Session,
        step: ExchangeStep,
    ) -> Result<(), AeError> {
        match step {
            ExchangeStep::Wait => self.put_back(id, session),
            ExchangeStep::Send(requests) => {
                for request in requests {
                    ctx.out
                        .send(session.peer, PeerMessage::AntiEntropy(request));
                }
                session.resends = 0;
                self.keep(ctx, id, session);
            }
            ExchangeStep::Done(buckets) => {
                self.counters.buckets_differing += buckets.len() as u64;
                let spans = match self.set.tree(&session.range) {
                    Some(tree) => span::of_buckets(tree, &buckets),
                    None => {
                        self.abandon(id);
                        return Ok(());
                    }
                };
                if spans.is_empty() {
                    // The difference vanished while descending (pushes or writes).
                    self.finish(ctx, id, &session, true);
                } else {
                    session.phase = Phase::Repair(Repair {
                        spans,
                        next: 0,
                        page: 0,
                        after: None,
                        page_spans: 0,
                        entries: Vec::new(),
                        complete: false,
                        eventual: false,
                    });
                    session.resends = 0;
                    self.send_page(ctx, id, session)?;
                }
            }
        }
        Ok(())
    }

    /// Lists the next page (from `after` in `spans[next]`, over at most
    /// `KEY_PAGE_SPANS_MAX` spans) and sends it; keeps the session.
    fn send_page(
        &mut self,
        ctx: &mut AeCtx<'_>,
        id: ExchangeId,
        mut session: Session,
    ) -> Result<(), AeError> {
        let Phase::Repair(repair) = &mut session.phase else {
            return Ok(());
        };
        repair.page_spans = repair
            .spans
            .len()
            .saturating_sub(repair.next)
            .min(KEY_PAGE_SPANS_MAX);
        let scanned = index::scan_spans(
            ctx.engine,
            Kind::of_page(repair.eventual),
            repair.page_spans(),
            repair.after.as_deref(),
            PAGE_LIMITS,
        );
        let (entries, complete) = match scanned {
            Ok(page) => page,
            Err(error) => {
                self.abandon(id);
                return Err(error.into());
            }
        };
        repair.page = repair.page.saturating_add(1);
        repair.entries = entries;
        repair.complete = complete;
        ctx.out.send(
            session.peer,
            PeerMessage::AntiEntropyKeys(page_message(id, session.range, repair)),
        );
        self.keep(ctx, id, session);
        Ok(())
    }

    fn on_page_reply(
        &mut self,
        ctx: &mut AeCtx<'_>,
        from: NodeId,
        reply: KeyPageReply,
    ) -> Result<(), AeError> {
        let id = reply.id;
        let Some(mut session) = self.take(id, from) else {
            return Ok(());
        };
        let range = session.range;
        let Phase::Repair(repair) = &mut session.phase else {
            self.counters.stale_responses += 1;
            self.put_back(id, session);
            return Ok(());
        };
        if reply.page != repair.page || reply.range != range {
            // A duplicate or late reply to an earlier page.
            self.counters.stale_responses += 1;
            self.put_back(id, session);
            return Ok(());
        }
        let Some(covered_span) = repair::check_reply(
            &range,
            repair.page_spans(),
            repair.after.as_deref(),
            &repair.entries,
            repair.complete,
            &reply,
        ) else {
            self.abandon(id);
            return Ok(());
        };
        self.counters.key_pages += 1;
        // Push what the responder wants, within the page's push budget. If the budget
        // runs out, the next page starts after the last key pushed, so nothing wanted
        // is skipped (keys before it were compared and pushed by both sides).
        // (span index into the page's spans, key) to resume after; `None`: page done.
        let mut resume = covered_span.zip(reply.covered_to);
        let mut budget = PushBudget::default();
        for offset in &reply.want {
            let Some(entry) = repair.entries.get(usize::from(*offset)) else {
                continue;
            };
            match budget.push(ctx, from, &entry.key, repair.eventual) {
                Ok(true) => self.counters.keys_pushed += 1,
                Ok(false) => {
                    let page_spans = repair.page_spans();
                    resume = budget.last_pushed.clone().and_then(|key| {
                        let position = crate::ring::key_position(&key);
                        let span_index =
                            page_spans.iter().position(|arc| arc.contains(position))?;
                        Some((span_index, key))
                    });
                    break;
                }
                Err(error) => {
                    self.abandon(id);
                    return Err(error);
                }
            }
        }
        match resume {
            Some((span_index, key)) => {
                repair.next = repair.next.saturating_add(span_index);
                repair.after = Some(key);
            }
            None => {
                repair.next = repair.next.saturating_add(repair.page_spans);
                repair.after = None;
            }
        }
        if repair.next >= repair.spans.len() {
            if repair.eventual {
                self.finish(ctx, id, &session, false);
                return Ok(());
            }
            // Registers done: the same spans again for eventual keys.
            repair.eventual = true;
            repair.next = 0;
            repair.after = None;
        }
        session.resends = 0;
        self.send_page(ctx, id, session)
    }

    // ---- responder -----------------------------------------------------------------

    /// Whether `from` replicates `range` with this node (only co-replicas compare).
    fn is_co_replica(&self, range: &TokenRange, from: NodeId) -> bool {
        from != self.me
            && self
                .set
                .replicas(range)
                .is_some_and(|replicas| replicas.contains(&from))
    }

    /// Answers a root batch (stateless). Only ranges shared with `from` are compared
    /// (others come back `unknown`); an oversized batch is ignored, not answered.
    fn answer_roots(&mut self, ctx: &mut AeCtx<'_>, from: NodeId, batch: &RootBatch) {
        match self.set.compare_roots(from, batch) {
            Ok(reply) => {
                self.counters.requests_answered += 1;
                ctx.out
                    .send(from, PeerMessage::AntiEntropyRootsReply(reply));
            }
            Err(_) => ctx.counters.messages_ignored += 1,
        }
    }

    fn answer_exchange(&mut self, ctx: &mut AeCtx<'_>, from: NodeId, request: &ExchangeRequest) {
        let response = if self.is_co_replica(&request.range(), from) {
            self.set.respond(request)
        } else {
            request.rejection(RejectReason::UnknownRange)
        };
        self.counters.requests_answered += 1;
        ctx.out.send(from, PeerMessage::AntiEntropyReply(response));
    }

    /// Compares a peer's page with this replica's entries from the same cursor, pushes
    /// what this side holds newer (within the push budget) and replies with how far it
    /// got and what it wants. Stateless: a duplicate page is simply answered again.
    fn answer_page(
        &mut self,
        ctx: &mut AeCtx<'_>,
        from: NodeId,
        page: &KeyPage,
    ) -> Result<(), AeError> {
        let positions = if self.is_co_replica(&page.range, from) {
            repair::check_page(page, self.settings.key_size_bytes_max)
        } else {
            None
        };
        let Some(positions) = positions else {
            ctx.counters.messages_ignored += 1;
            return Ok(());
        };
        let (mine, my_complete) = index::scan_spans(
            ctx.engine,
            Kind::of_page(page.eventual),
            &page.spans,
            page.after.as_deref(),
            PAGE_LIMITS,
        )?;
        let (items, covered) = repair::merge(
            &page.range,
            &page.entries,
            &positions,
            page.complete,
            &mine,
            my_complete,
            ctx.purge_floor,
        );
        let mut covered_to = covered.map(<[u8]>::to_vec);
        let mut want = Vec::new();
        let mut budget = PushBudget::default();
        let mut last_done: Option<&[u8]> = None;
        for item in &items {
            match item.action {
                Action::Same => {}
                Action::Want(offset) => want.push(offset),
                Action::Push | Action::Both(_) => {
                    if !budget.push(ctx, from, item.key, page.eventual)? {
                        // Out of budget: report the page compared up to the last key
                        // fully handled; the initiator's next page starts after it.
                        covered_to = last_done.map(<[u8]>::to_vec);
                        break;
                    }
                    self.counters.keys_pushed += 1;
                    if let Action::Both(offset) = item.action {
                        want.push(offset);
                    }
                }
            }
            last_done = Some(item.key);
        }
        self.counters.requests_answered += 1;
        ctx.out.send(
            from,
            PeerMessage::AntiEntropyKeysReply(KeyPageReply {
                id: page.id,
                range: page.range,
                page: page.page,
                covered_to,
                want,
            }),
        );
        Ok(())
    }

    /// A pushed register: applied through the replica write path iff this node
    /// replicates the key, the sender is a co-replica, and the tag is greater.
    fn on_push(
        &mut self,
        ctx: &mut AeCtx<'_>,
        from: NodeId,
        key: &[u8],
        tag: Tag,
        value: Option<Vec<u8>>,
    ) -> Result<(), AeError> {
        let range = self.set.tree_for_key(key).map(|tree| tree.range());
        if !range.is_some_and(|range| self.is_co_replica(&range, from)) {
            ctx.counters.messages_ignored += 1;
            return Ok(());
        }
        // A purged tombstone stays purged: absent reads and shadows the same.
        if value.is_none()
            && tag.counter <= ctx.purge_floor
            && replica::read_register(ctx.engine, key)?.0 == Tag::ZERO
        {
            return Ok(());
        }
        if let Some(change) =
            replica::apply_register(ctx.engine, key, tag, value, replica::Promises::Respect)?
        {
            ctx.counters.keys_repaired += 1;
            self.on_applied(key, &change);
        }
        Ok(())
    }

    /// A pushed eventual state: merged into this replica's copy iff this node
    /// replicates the key and the sender is a co-replica. A merge that would exceed
    /// the state size limit is dropped (counted): the states keep differing, visibly.
    fn on_push_eventual(
        &mut self,
        ctx: &mut AeCtx<'_>,
        from: NodeId,
        key: &[u8],
        state: &crate::protocol::SiblingState,
    ) -> Result<(), AeError> {
        let range = self.set.tree_for_key(key).map(|tree| tree.range());
        if !range.is_some_and(|range| self.is_co_replica(&range, from)) {
            ctx.counters.messages_ignored += 1;
            return Ok(());
        }
        match merge_pushed(ctx.engine, key, state, self.settings.state_size_bytes_max)? {
            Ok(Some(change)) => {
                ctx.counters.keys_repaired += 1;
                ctx.counters.eventual_writes_applied += 1;
                self.on_eventual_applied(&change);
            }
            Ok(None) => {}
            Err(_) => ctx.counters.messages_ignored += 1,
        }
        Ok(())
    }
}

/// The page request for `repair`'s current page (built again, identically, to resend).
fn page_message(id: ExchangeId, range: TokenRange, repair: &Repair) -> KeyPage {
    KeyPage {
        id,
        range,
        page: repair.page,
        spans: repair.page_spans().to_vec(),
        after: repair.after.clone(),
        entries: repair
            .entries
            .iter()
            .map(|entry| KeyVersion {
                key: entry.key.clone(),
                version: entry.version,
            })
            .collect(),
        complete: repair.complete,
        eventual: repair.eventual,
    }
}

/// Bytes pushed in answer to one page; the first push always goes out.
#[derive(Debug, Default)]
struct PushBudget {
    bytes: usize,
    pushes: usize,
    last_pushed: Option<Vec<u8>>,
}

impl PushBudget {
    /// Reads `key`'s register (or, `eventual`, its sibling state) now (it may be newer
    /// than the listed version: still a durable state) and sends it to `to`. `false`:
    /// the budget is spent, nothing sent.
    fn push(
        &mut self,
        ctx: &mut AeCtx<'_>,
        to: NodeId,
        key: &[u8],
        eventual: bool,
    ) -> Result<bool, AeError> {
        if eventual {
            let state = super::eventual::replica::read_state(ctx.engine, key)?;
            if state == crate::protocol::SiblingState::new() {
                // Indexed keys always have a record; nothing to push if it vanished.
                return Ok(true);
            }
            // Values plus a generous allowance per sibling for its dot and clock.
            let size = state
                .values()
                .map(|value| value.as_ref().map_or(0, Vec::len).saturating_add(64))
                .fold(key.len(), usize::saturating_add);
            if !self.take(size) {
                return Ok(false);
            }
            self.last_pushed = Some(key.to_vec());
            ctx.out.send(
                to,
                PeerMessage::AntiEntropyPushEventual {
                    key: key.to_vec(),
                    state,
                },
            );
            return Ok(true);
        }
        let (tag, value) = replica::read_register(ctx.engine, key)?;
        if tag == Tag::ZERO {
            // Indexed keys always have a record; nothing to push if it vanished.
            return Ok(true);
        }
        let size = key.len().saturating_add(value.as_ref().map_or(0, Vec::len));
        if !self.take(size) {
            return Ok(false);
        }
        self.last_pushed = Some(key.to_vec());
        ctx.out.send(
            to,
            PeerMessage::AntiEntropyPush {
                epoch: ctx.epoch,
                key: key.to_vec(),
                tag,
                value,
            },
        );
        Ok(true)
    }
}

impl PushBudget {
    /// Counts a push of `size_bytes`; `false` (nothing counted) once the budget is spent.
    fn take(&mut self, size_bytes: usize) -> bool {
        if self.pushes > 0 && self.bytes.saturating_add(size_bytes) > PUSH_BYTES_PER_PAGE_MAX {
            return false;
        }
        self.bytes = self.bytes.saturating_add(size_bytes);
        self.pushes += 1;
        true
    }
}

fn open_error(error: IndexError) -> NodeError {
    match error {
        IndexError::Storage(error) => NodeError::Storage(error),
        IndexError::Corrupt(key) => NodeError::CorruptMetadata {
            key,
            reason: "malformed position index entry".into(),
        },
    }
}

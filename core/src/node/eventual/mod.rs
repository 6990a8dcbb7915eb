//! Eventual consistency mode (opt-in per request): Dynamo-style sloppy quorums over
//! sibling states (dotted version vectors), hinted handoff and read repair.
//!
//! Entirely separate from the linearizable (ABD) path: its own keyspace (`e/` states,
//! `h/` hints, see [`stored`]), its own messages (`PeerMessage::Eventual*`), its own
//! operations and timers. No eventual message reads or writes a `d/` register, and no
//! eventual answer, hint or fallback ever counts toward an ABD quorum (the ABD
//! coordinator only counts `ReadTagAck`/`ReadAck`/`WriteAck` from the key's preference
//! list). A user key should be used in one mode only: the two modes never see each
//! other's writes.
//!
//! - `sloppy`: which nodes serve a key (first N believed alive, fallbacks with hints).
//! - `coordinator`: client gets and puts (R/W counting, read repair).
//! - `replica`: the node-side handlers (update at the dot issuer, merge, hints).
//! - `hints`, `handoff`: hint bookkeeping and delivery to owners back alive.
//! - `context`: the opaque causal context handed to clients.
//!
//! Flow of a put (`PutEventual { key, value, context }` received by node R):
//! 1. S = sloppy quorum of the key (fewer than W nodes → `Unavailable`, nothing sent).
//! 2. The dot issuer is R itself if R ∈ S, else S's first node. `EventualUpdate` goes to
//!    it; it applies `Siblings::update(context, issuer, value)` to its own durable copy
//!    (dots must be issued by a node that keeps its state for the key, or they could
//!    repeat) and answers the resulting state.
//! 3. `EventualMerge { state }` to the rest of S; each merges it durably (a fallback also
//!    keeps a hint for the owner it stands in for) and acks. W acks (issuer included)
//!    → `Done`.
//!
//! Get: `EventualRead` to S, R answers → reply with their merge
//! ([`crate::protocol::ClientReply::Siblings`]); answers that arrive until the deadline
//! are merged too, and every answering node whose state was behind the merge gets it
//! (`EventualMerge`: read repair).

mod context;
mod coordinator;
mod handoff;
mod hints;
pub(crate) mod replica;
mod sloppy;
pub mod stored;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::protocol::{ClientRequest, OpId, PeerMessage, RequestId, SiblingState};
use crate::ring::{NodeId, RingLayout};
use crate::storage::{Engine, StorageError};

use super::config::NodeConfig;
use super::gossip::FailureDetector;
use super::outbox::Outbox;
use super::replica::ReplicaError;
use super::status::NodeCounters;
use super::timers::TimerQueue;

use coordinator::EvOp;
use handoff::Handoff;
use hints::HintQueues;
pub(crate) use replica::EventualChange;
use replica::ReplicaEnv;

pub use context::{decode_context, ContextError};
pub use stored::{EventualRecord, HintRecord};

/// Eventual operation ids (`OpId::seq`) start here, far above anything the ABD
/// coordinator (counting from 0) reaches, so an `OpId` names one operation of one mode.
const EVENTUAL_SEQ_BASE: u64 = 1 << 62;
/// Update requests remembered per node to answer resends without applying them twice.
/// A resend older than this many updates (or one across a restart of the issuer) would
/// be applied again: the value then appears twice as siblings, which readers resolve
/// like any concurrent write.
const RECENT_UPDATES_MAX: usize = 4096;

/// What eventual-mode steps act on besides the module's own state.
pub(crate) struct EvCtx<'a> {
    pub now_ms: u64,
    pub out: &'a mut Outbox,
    pub engine: &'a dyn Engine,
    pub counters: &'a mut NodeCounters,
    pub layout: &'a RingLayout,
    pub detector: &'a FailureDetector,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct EventualSettings {
    pub read_quorum: usize,
    pub write_quorum: usize,
    pub request_timeout_ms: u64,
    pub resend_interval_ms: u64,
    pub key_size_bytes_max: usize,
    pub value_size_bytes_max: usize,
    pub context_size_bytes_max: usize,
    pub state_size_bytes_max: usize,
    pub handoff_interval_ms: u64,
    pub handoff_batch_max: usize,
    pub handoff_batch_bytes_max: usize,
}

impl EventualSettings {
    pub fn from_config(config: &NodeConfig) -> Self {
        EventualSettings {
            read_quorum: config.eventual_r,
            write_quorum: config.eventual_w,
            request_timeout_ms: config.request_timeout_ms,
            resend_interval_ms: config.resend_interval_ms(),
            key_size_bytes_max: config.key_size_bytes_max,
            value_size_bytes_max: config.value_size_bytes_max,
            context_size_bytes_max: config.eventual_context_size_bytes_max(),
            state_size_bytes_max: config.eventual_state_size_bytes_max(),
            handoff_interval_ms: config.hint_handoff_interval_ms,
            handoff_batch_max: config.hint_handoff_batch_max,
            handoff_batch_bytes_max: config.hint_handoff_batch_bytes_max,
        }
    }
}

/// Recently applied `EventualUpdate` requests (bounded, oldest forgotten first).
#[derive(Debug, Default)]
struct RecentUpdates {
    set: BTreeSet<OpId>,
    order: VecDeque<OpId>,
}

impl RecentUpdates {
    fn contains(&self, req: OpId) -> bool {
        self.set.contains(&req)
    }

    fn insert(&mut self, req: OpId) {
        if self.set.insert(req) {
            self.order.push_back(req);
        }
        while self.order.len() > RECENT_UPDATES_MAX {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }
}

/// Eventual mode on one node: coordinator of the eventual requests it receives, replica
/// and fallback for the keys it serves, holder and deliverer of hints.
#[derive(Debug)]
pub(crate) struct Eventual {
    me: NodeId,
    incarnation: u64,
    next_seq: u64,
    settings: EventualSettings,
    /// In-flight client operations by `OpId::seq`.
    ops: BTreeMap<u64, EvOp>,
    /// One wake-up per in-flight operation: its deadline or next resend.
    timers: TimerQueue<u64>,
    recent: RecentUpdates,
    hints: HintQueues,
    handoff: Handoff,
    /// Copies changed and not yet taken by the node (`take_changes`).
    changes: Vec<EventualChange>,
}

impl Eventual {
    /// Counts the hints persisted in `engine` (one scan of `h/`).
    pub fn open(
        me: NodeId,
        incarnation: u64,
        config: &NodeConfig,
        engine: &dyn Engine,
        now_ms: u64,
    ) -> Result<Eventual, StorageError> {
        Ok(Eventual {
            me,
            incarnation,
            next_seq: EVENTUAL_SEQ_BASE,
            settings: EventualSettings::from_config(config),
            ops: BTreeMap::new(),
            timers: TimerQueue::default(),
            recent: RecentUpdates::default(),
            hints: HintQueues::load(engine, config.hints_queued_max)?,
            changes: Vec::new(),
            handoff: Handoff::new(now_ms),
        })
    }

    /// Client operations in flight (gets stay until read repair is done).
    pub fn in_flight(&self) -> usize {
        self.ops.len()
    }

    pub fn next_timeout_ms(&self) -> Option<u64> {
        let handoff = self.handoff.next_timeout_ms(&self.hints);
        match (self.timers.next_ms(), handoff) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Hints held, by target.
    pub fn hint_queues(&self) -> BTreeMap<NodeId, u64> {
        self.hints.by_target().clone()
    }

    fn next_op_id(&mut self) -> OpId {
        let id = OpId {
            coordinator: self.me,
            incarnation: self.incarnation,
            seq: self.next_seq,
        };
        self.next_seq = self.next_seq.saturating_add(1);
        id
    }

    /// Whether `req` names an operation of this run of this node.
    fn is_mine(&self, req: OpId) -> bool {
        req.coordinator == self.me && req.incarnation == self.incarnation
    }

    /// Starts an eventual client request (already admitted: sizes, in-flight bound).
    pub fn on_client(&mut self, ctx: &mut EvCtx<'_>, client: RequestId, request: ClientRequest) {
        match request {
            ClientRequest::Get { key, .. } => self.start_get(ctx, client, key),
            ClientRequest::Put { key, value, .. } => {
                self.start_put(ctx, client, key, None, Some(value))
            }
            ClientRequest::Delete { key, .. } => self.start_put(ctx, client, key, None, None),
            ClientRequest::PutEventual {
                key,
                value,
                context,
            } => self.start_put(ctx, client, key, context, Some(value)),
            ClientRequest::DeleteEventual { key, context } => {
                self.start_put(ctx, client, key, context, None)
            }
            // The node routes membership changes, scans and updates elsewhere.
            ClientRequest::Admin(_) | ClientRequest::Scan { .. } | ClientRequest::Update { .. } => {
                ctx.out.reply(
                    client,
                    crate::protocol::ClientReply::Error(
                        crate::protocol::ClientError::Unsupported {
                            reason: "not an eventual-mode request".into(),
                        },
                    ),
                )
            }
        }
    }

    /// Runs due operation timers and a handoff round if one is due.
    pub fn on_timers(&mut self, ctx: &mut EvCtx<'_>) -> Result<(), ReplicaError> {
        self.on_op_timers(ctx);
        self.handoff_round(ctx)
    }

    /// A key's state streamed from an old replica during a layout change: merged into
    /// this node's copy, durably, like an `EventualMerge` without a hint. Refusals
    /// (state too large) are dropped: the old replicas still hold it.
    pub fn apply_synced(
        &mut self,
        ctx: &mut EvCtx<'_>,
        key: &[u8],
        state: &SiblingState,
    ) -> Result<(), ReplicaError> {
        let req = OpId::default();
        replica::on_merge(&mut self.replica_env(ctx), req, key, state, None).map(|_| ())
    }

    /// An eventual-mode message from `from` (a member). Replica messages are answered
    /// (or, on a storage error, not: the error is returned for status); replies go to
    /// the operation or handoff they belong to.
    pub fn on_peer(
        &mut self,
        ctx: &mut EvCtx<'_>,
        from: NodeId,
        message: PeerMessage,
    ) -> Result<(), ReplicaError> {
        if !self.within_limits(&message) {
            ctx.counters.messages_ignored += 1;
            return Ok(());
        }
        let answer = match message {
            PeerMessage::EventualRead { req, key } => replica::on_read(ctx.engine, req, &key)?,
            PeerMessage::EventualUpdate {
                req,
                key,
                context,
                value,
                hint_for,
            } => {
                if self.recent.contains(req) {
                    // A resend of an update already applied here: answer with the
                    // current state (which includes that update's dot) instead of
                    // issuing a second dot for the same write.
                    PeerMessage::EventualUpdateAck {
                        req,
                        state: replica::read_state(ctx.engine, &key)?,
                    }
                } else {
                    let hint_for = self.valid_hint_target(ctx, hint_for);
                    let answer = replica::on_update(
                        &mut self.replica_env(ctx),
                        req,
                        &key,
                        &context,
                        value,
                        hint_for,
                    )?;
                    if matches!(answer, PeerMessage::EventualUpdateAck { .. }) {
                        self.recent.insert(req);
                        if hint_for.is_none() {
                            self.hint_owners_if_not_one(ctx, req, &key)?;
                        }
                    }
                    answer
                }
            }
            PeerMessage::EventualMerge {
                req,
                key,
                state,
                hint_for,
            } => {
                let hint_for = self.valid_hint_target(ctx, hint_for);
                let answer =
                    replica::on_merge(&mut self.replica_env(ctx), req, &key, &state, hint_for)?;
                if hint_for.is_none() && matches!(answer, PeerMessage::EventualMergeAck { .. }) {
                    self.hint_owners_if_not_one(ctx, req, &key)?;
                }
                answer
            }
            reply @ (PeerMessage::EventualReadAck { .. }
            | PeerMessage::EventualUpdateAck { .. }
            | PeerMessage::EventualMergeAck { .. }
            | PeerMessage::EventualRefused { .. }) => {
                return self.on_reply(ctx, from, reply);
            }
            // Not an eventual message: the node does not route those here.
            _ => {
                ctx.counters.messages_ignored += 1;
                return Ok(());
            }
        };
        ctx.out.send(from, answer);
        Ok(())
    }

    fn on_reply(
        &mut self,
        ctx: &mut EvCtx<'_>,
        from: NodeId,
        reply: PeerMessage,
    ) -> Result<(), ReplicaError> {
        let Some(req) = reply.op_id() else {
            return Ok(());
        };
        if !self.is_mine(req) {
            ctx.counters.stale_replies += 1;
            return Ok(());
        }
        if self.ops.contains_key(&req.seq) {
            self.on_op_reply(ctx, from, req.seq, reply);
            return Ok(());
        }
        if self.handoff.is_in_flight(req.seq) {
            return self.on_handoff_reply(ctx, from, req.seq, reply);
        }
        ctx.counters.stale_replies += 1;
        Ok(())
    }

    /// A hint is kept only for another member (a peer cannot make this node queue hints
    /// for nodes that will never come to collect them).
    /// A write this node stored for `key` while it is not among the key's replicas in
    /// the newest layout (a layout change moved the key away, or the coordinator routed
    /// by an older layout): its copy alone may never reach the new owners (eventual
    /// writes carry no epoch, so range streaming can miss one that lands after a
    /// source served its pages), so it keeps a hint for each of them. Bounded like
    /// every hint: refused (and skipped) when the hint store is full.
    fn hint_owners_if_not_one(
        &mut self,
        ctx: &mut EvCtx<'_>,
        req: OpId,
        key: &[u8],
    ) -> Result<(), ReplicaError> {
        let owners = ctx.layout.preference_list(key);
        if owners.is_empty() || owners.contains(&self.me) {
            return Ok(());
        }
        let state = replica::read_state(ctx.engine, key)?;
        for owner in owners {
            replica::on_merge(&mut self.replica_env(ctx), req, key, &state, Some(owner))?;
        }
        Ok(())
    }

    fn valid_hint_target(&self, ctx: &EvCtx<'_>, hint_for: Option<NodeId>) -> Option<NodeId> {
        hint_for.filter(|owner| *owner != self.me && ctx.layout.node(*owner).is_some())
    }

    fn replica_env<'a>(&'a mut self, ctx: &'a mut EvCtx<'_>) -> ReplicaEnv<'a> {
        ReplicaEnv {
            engine: ctx.engine,
            me: self.me,
            hints: &mut self.hints,
            counters: ctx.counters,
            state_size_bytes_max: self.settings.state_size_bytes_max,
            changes: &mut self.changes,
        }
    }

    /// The copies changed since the last call, for the anti-entropy trees. The node
    /// drains them after every call into this module, so they never pile up.
    pub fn take_changes(&mut self) -> Vec<EventualChange> {
        std::mem::take(&mut self.changes)
    }

    /// A peer message over this node's limits is not served (nodes are expected to
    /// share limits; this guards the engine and what the node would send on).
    fn within_limits(&self, message: &PeerMessage) -> bool {
        let key_ok = |key: &Vec<u8>| key.len() <= self.settings.key_size_bytes_max;
        match message {
            PeerMessage::EventualRead { key, .. } | PeerMessage::EventualMerge { key, .. } => {
                key_ok(key)
            }
            PeerMessage::EventualUpdate { key, value, .. } => {
                key_ok(key)
                    && value
                        .as_ref()
                        .is_none_or(|v| v.len() <= self.settings.value_size_bytes_max)
            }
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests;

//! The coordinator side of ABD: drives each client operation through its phases.
//!
//! Put / delete: too few replicas believed alive → `Unavailable`, nothing sent. Phase 1
//! `ReadTag` to all N replicas, `q = N/2 + 1` answers, else `Unavailable` (nothing was
//! written). Phase 2 `Write` with a tag above the quorum's maximum, `q` acks → `Done`,
//! else `Indeterminate` (some replica may hold it; a later read may return it).
//!
//! Get: phase 1 `Read`, `q` answers; return the value of the largest tag if `q` of them
//! carry it, otherwise write it back first (so no later read can return an older
//! value). Any timeout → `Unavailable` (a read changes no register's value: the
//! write-back only spreads a value whose write already reached a replica).
//!
//! Each phase has `request_timeout_ms`; messages to replicas that have not answered are
//! resent every `resend_interval_ms` (loss is expected; replicas are idempotent).

mod scan;
mod update;

use std::collections::{BTreeMap, BTreeSet};

use crate::protocol::{ClientError, ClientReply, OpId, PeerMessage, RequestId};
use crate::ring::NodeId;
use crate::storage::Engine;
use crate::versioning::Tag;

use super::mutations::{Mutation, Mutations};
use super::op::{quorum_of, Op, OpKind, Phase};

/// Phase-1 restarts after `Stale` answers, at most, per operation (each layout change
/// costs one; more means the layout changes faster than a request completes).
const RESTARTS_MAX: u32 = 3;
use super::outbox::Outbox;
use super::status::NodeCounters;
use super::tags::{IssueError, TagIssuer};
use super::timers::TimerQueue;

pub(crate) use scan::ScanEnv;
pub use scan::SCAN_COUNT_MAX;
pub use update::parse_integer;

/// What coordinator steps act on besides the coordinator itself.
pub(crate) struct Ctx<'a> {
    pub now_ms: u64,
    pub out: &'a mut Outbox,
    pub engine: &'a dyn Engine,
    pub counters: &'a mut NodeCounters,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct CoordinatorSettings {
    pub request_timeout_ms: u64,
    pub resend_interval_ms: u64,
    pub in_flight_requests_max: usize,
}

#[derive(Debug)]
pub(crate) struct Coordinator {
    me: NodeId,
    incarnation: u64,
    next_seq: u64,
    settings: CoordinatorSettings,
    tags: TagIssuer,
    /// In-flight operations by `OpId::seq`.
    ops: BTreeMap<u64, Op>,
    /// In-flight scan pages by `OpId::seq` (`scan.rs`; one sequence with `ops`).
    scans: BTreeMap<u64, scan::ScanOp>,
    /// In-flight conditional writes by `OpId::seq` (`update.rs`; same sequence).
    updates: BTreeMap<u64, update::UpdateOp>,
    /// Keys with an update round in flight here, and the updates of each that wait
    /// for it (the next round takes them as one batch).
    waiting_updates: BTreeMap<Vec<u8>, Vec<(RequestId, Option<crate::protocol::Update>)>>,
    /// Updates in `waiting_updates`, in all.
    waiting_count: usize,
    /// One wake-up per in-flight operation: its phase deadline or next resend.
    timers: TimerQueue<u64>,
    /// Deliberate bugs (test builds only; otherwise zero-sized and always off).
    mutations: Mutations,
}

impl Coordinator {
    pub fn new(
        me: NodeId,
        incarnation: u64,
        tags: TagIssuer,
        settings: CoordinatorSettings,
    ) -> Self {
        Coordinator {
            me,
            incarnation,
            next_seq: 0,
            settings,
            tags,
            ops: BTreeMap::new(),
            scans: BTreeMap::new(),
            updates: BTreeMap::new(),
            waiting_updates: BTreeMap::new(),
            waiting_count: 0,
            timers: TimerQueue::default(),
            mutations: Mutations::NONE,
        }
    }

    /// Runs with `mutations` on (`node/mutations.rs`; a no-op without the feature).
    pub fn with_mutations(mut self, mutations: Mutations) -> Self {
        self.mutations = mutations;
        self
    }

    pub fn in_flight(&self) -> usize {
        self.ops.len() + self.scans.len() + self.updates.len() + self.waiting_count
    }

    /// Whether `req` was issued by this coordinator in this incarnation.
    fn is_mine(&self, req: OpId) -> bool {
        req.coordinator == self.me && req.incarnation == self.incarnation
    }

    /// A new operation id: never reused within this incarnation (`OpId`).
    fn fresh_id(&mut self) -> OpId {
        let id = OpId {
            coordinator: self.me,
            incarnation: self.incarnation,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        id
    }

    pub fn next_timeout_ms(&self) -> Option<u64> {
        self.timers.next_ms()
    }

    /// Starts a linearizable operation on `key` (already validated) whose replica sets
    /// are `sets` (one, or two during a layout change), in layout epoch `epoch`.
    /// `believed_alive` says which replicas are not known dead.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        &mut self,
        ctx: &mut Ctx<'_>,
        client: RequestId,
        key: Vec<u8>,
        kind: OpKind,
        sets: Vec<Vec<NodeId>>,
        epoch: u64,
        believed_alive: impl Fn(NodeId) -> bool,
    ) {
        if !self.admit(ctx, client, &sets, believed_alive) {
            return;
        }
        let id = self.fresh_id();
        let mut op = Op::new(id, client, key, kind, sets, epoch);
        self.begin_phase(ctx, &mut op);
        self.ops.insert(id.seq, op);
    }

    /// Refuses (and answers) an operation this node cannot start: too many in flight,
    /// or too few of a replica set believed alive for a majority (nothing is sent).
    fn admit(
        &mut self,
        ctx: &mut Ctx<'_>,
        client: RequestId,
        sets: &[Vec<NodeId>],
        believed_alive: impl Fn(NodeId) -> bool,
    ) -> bool {
        if self.ops.len() + self.updates.len() + self.waiting_count
            >= self.settings.in_flight_requests_max
        {
            ctx.counters.overloaded += 1;
            ctx.out
                .reply(client, ClientReply::Error(ClientError::Overloaded));
            return false;
        }
        for set in sets {
            let alive = set.iter().filter(|id| believed_alive(**id)).count();
            let quorum = quorum_of(set.len());
            if set.is_empty() || alive < quorum {
                ctx.counters.unavailable += 1;
                ctx.counters.refused_unreachable += 1;
                let reason = format!(
                    "only {alive} of the key's {} replicas are believed alive, {quorum} \
                     needed; nothing was sent",
                    set.len()
                );
                ctx.out.reply(
                    client,
                    ClientReply::Error(ClientError::Unavailable { reason }),
                );
                return false;
            }
        }
        true
    }

    /// A replica refused operation `req` because it knows layout epoch `epoch`, newer
    /// than the operation's; `sets` gives a key's replica sets in that epoch (the node
    /// already adopted it). Phase 1 starts again on the new sets (nothing was written);
    /// a write caught in phase 2 may have reached replicas: `Indeterminate`.
    ///
    /// A write in phase 2 never continues at the new epoch, even where the change left
    /// the key's replicas as they were (a purge change): tombstone purge relies on every
    /// `Write` of a tag below `e << 32` carrying an epoch below `e` (`node/purge/`).
    pub fn on_stale(
        &mut self,
        ctx: &mut Ctx<'_>,
        req: OpId,
        epoch: u64,
        sets: impl Fn(&[u8]) -> Vec<Vec<NodeId>>,
    ) {
        if self.is_update(req) {
            self.on_update_stale(ctx, req, epoch, sets);
            return;
        }
        let Some(op) = self
            .is_mine(req)
            .then(|| self.ops.remove(&req.seq))
            .flatten()
        else {
            ctx.counters.stale_replies += 1;
            return;
        };
        if op.epoch >= epoch {
            // Already restarted for this epoch.
            self.ops.insert(req.seq, op);
            return;
        }
        let reason = format!("the cluster layout changed (epoch {} to {epoch})", op.epoch);
        match (&op.phase, &op.kind) {
            (Phase::Query { .. }, _) if op.restarts < RESTARTS_MAX => {
                let sets = sets(&op.key);
                self.restart(ctx, op, sets, epoch);
            }
            (Phase::Propagate { .. }, OpKind::Put { .. }) => {
                let reason = format!("{reason} while the write was being stored");
                self.finish(
                    ctx,
                    &op,
                    ClientReply::Error(ClientError::Indeterminate { reason }),
                );
            }
            _ => {
                let reason = format!("{reason}; nothing was written");
                self.finish(
                    ctx,
                    &op,
                    ClientReply::Error(ClientError::Unavailable { reason }),
                );
            }
        }
    }

    /// Phase 1 again, on `sets` at `epoch` (bounded by the caller with `op.restarts`).
    /// A fresh id: answers to the earlier attempt (possibly produced before the replica
    /// synced, in flight or duplicated) must never count toward the new attempt's
    /// quorums. Same deadline: a request still answers within two phase timeouts.
    fn restart(&mut self, ctx: &mut Ctx<'_>, mut op: Op, sets: Vec<Vec<NodeId>>, epoch: u64) {
        self.timers.cancel(op.id.seq);
        op.id = self.fresh_id();
        op.restart(sets, epoch);
        let message = op.phase_message();
        for to in op.pending() {
            ctx.out.send(to, message.clone());
        }
        self.timers.schedule(op.id.seq, op.wake_ms());
        self.ops.insert(op.id.seq, op);
    }

    /// A `ReadTagAck`, `ReadAck`, `WriteAck` or `Refused` from `from` (updates' answers
    /// go to `update.rs`).
    pub fn on_reply(&mut self, ctx: &mut Ctx<'_>, from: NodeId, message: PeerMessage) {
        let Some(req) = message.op_id() else {
            return;
        };
        if self.is_update(req) {
            self.on_update_reply(ctx, from, message);
            return;
        }
        let Some(mut op) = self
            .is_mine(req)
            .then(|| self.ops.remove(&req.seq))
            .flatten()
        else {
            ctx.counters.stale_replies += 1;
            return;
        };
        let counted = match message {
            PeerMessage::ReadTagAck { tag, .. } => op.record_query(from, tag, None, false),
            PeerMessage::ReadAck { tag, value, .. } => op.record_query(from, tag, value, true),
            PeerMessage::WriteAck { .. } => op.record_ack(from),
            PeerMessage::Refused { tag, .. } => {
                let counted = op.record_refusal(from, tag);
                if counted && op.refusals_block() {
                    self.on_refused(ctx, op);
                    return;
                }
                counted
            }
            _ => false,
        };
        if !counted {
            ctx.counters.stale_replies += 1;
        }
        if counted && self.phase_complete(&op) {
            if let Some(op) = self.advance(ctx, op) {
                self.ops.insert(req.seq, op);
            }
        } else {
            self.ops.insert(req.seq, op);
        }
    }

    /// Replicas under a conditional write's promise refused phase 2 and no majority
    /// can acknowledge it any more. A read becomes a consensus read (`update.rs`): the
    /// promise may belong to a round whose coordinator is gone, and only a round
    /// above it lifts it. A put starts over only if every replica refused it while
    /// holding a smaller tag (then no copy of it was ever stored); one that some replica
    /// acknowledged, or that a replica holding a larger tag refused, may become visible
    /// later: `Indeterminate`. Until every replica answered, a put waits.
    fn on_refused(&mut self, ctx: &mut Ctx<'_>, op: Op) {
        let any_acked = matches!(&op.phase, Phase::Propagate { acked, .. } if !acked.is_empty());
        let reason = "conditional writes on the key refused the write".to_string();
        let error = match op.kind {
            OpKind::Get => {
                self.timers.cancel(op.id.seq);
                ctx.counters.write_refusals += 1;
                let item = Some((op.client, None));
                self.enqueue_update(ctx, op.key, item, op.sets, op.epoch);
                return;
            }
            OpKind::Put { .. } if any_acked => Some(ClientError::Indeterminate { reason }),
            // The rest may still acknowledge.
            OpKind::Put { .. } if !op.pending().is_empty() => {
                self.ops.insert(op.id.seq, op);
                return;
            }
            // A replica refused holding a larger tag: an earlier copy of the write may
            // have landed there (acknowledgement lost) before that tag replaced it.
            OpKind::Put { .. } if op.refused_maybe_held => {
                Some(ClientError::Indeterminate { reason })
            }
            // Every replica refused holding a smaller tag: stored nowhere, ever.
            OpKind::Put { .. } if op.restarts < RESTARTS_MAX => None,
            OpKind::Put { .. } => Some(ClientError::Unavailable {
                reason: format!("{reason}; nothing was written"),
            }),
        };
        match error {
            Some(error) => self.finish(ctx, &op, ClientReply::Error(error)),
            None => {
                ctx.counters.write_refusals += 1;
                let (sets, epoch) = (op.sets.clone(), op.epoch);
                self.restart(ctx, op, sets, epoch);
            }
        }
    }

    /// Fails operations whose phase deadline passed; resends for the others that are due.
    pub fn on_timers(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(seq) = self.timers.pop_due(ctx.now_ms) {
            let Some(mut op) = self.ops.remove(&seq) else {
                if !self.on_update_timer(ctx, seq) {
                    self.on_scan_timer(ctx, seq);
                }
                continue;
            };
            if ctx.now_ms >= op.phase_deadline_ms {
                self.time_out(ctx, &op);
                continue;
            }
            let message = op.phase_message();
            for to in op.pending() {
                ctx.counters.retransmissions += 1;
                ctx.out.send(to, message.clone());
            }
            op.next_resend_ms = ctx.now_ms.saturating_add(self.settings.resend_interval_ms);
            self.timers.schedule(seq, op.wake_ms());
            self.ops.insert(seq, op);
        }
    }

    /// Whether the operation's current phase has the answers it waits for: a majority
    /// of every replica set.
    fn phase_complete(&self, op: &Op) -> bool {
        if op.has_quorum() {
            return true;
        }
        // Mutation: a put is acknowledged once any one replica holds it.
        self.mutations.has(Mutation::AckPutAfterOne)
            && matches!(
                (&op.phase, &op.kind),
                (Phase::Propagate { acked, .. }, OpKind::Put { .. }) if !acked.is_empty()
            )
    }

    /// The current phase reached its quorum: moves to phase 2 or finishes. Returns the
    /// operation if it is still in flight.
    fn advance(&mut self, ctx: &mut Ctx<'_>, mut op: Op) -> Option<Op> {
        let next = match (&op.phase, &op.kind) {
            (Phase::Propagate { value, .. }, OpKind::Get) => Err(ClientReply::Value(value.clone())),
            (Phase::Propagate { .. }, OpKind::Put { .. }) => Err(ClientReply::Done),
            (Phase::Query { best_tag, .. }, OpKind::Put { value }) => {
                match self.tags.issue(*best_tag, self.me, op.epoch, ctx.engine) {
                    Ok(tag) => Ok(Phase::Propagate {
                        tag,
                        value: value.clone(),
                        acked: BTreeSet::new(),
                    }),
                    Err(error) => Err(ClientReply::Error(ClientError::Unavailable {
                        reason: match error {
                            IssueError::Exhausted => "tag counter exhausted".into(),
                            IssueError::Storage(cause) => cause,
                        } + "; nothing was written",
                    })),
                }
            }
            (
                Phase::Query {
                    answered,
                    best_tag,
                    best_value,
                },
                OpKind::Get,
            ) => {
                let holders: BTreeSet<NodeId> = answered
                    .iter()
                    .filter(|(_, tag)| *tag == best_tag)
                    .map(|(id, _)| *id)
                    .collect();
                // Mutation: return without the write-back, whoever holds the tag.
                let skip_write_back = self.mutations.has(Mutation::SkipReadWriteBack);
                if op.is_quorum(|id| holders.contains(id)) || skip_write_back {
                    Err(ClientReply::Value(best_value.clone()))
                } else {
                    ctx.counters.write_backs += 1;
                    Ok(write_back_phase(*best_tag, best_value.clone(), holders))
                }
            }
        };
        match next {
            Ok(phase) => {
                op.phase = phase;
                self.begin_phase(ctx, &mut op);
                Some(op)
            }
            Err(reply) => {
                self.finish(ctx, &op, reply);
                None
            }
        }
    }

    /// Sends the phase's message to every replica that has not answered it and arms
    /// the phase deadline and the first resend.
    fn begin_phase(&mut self, ctx: &mut Ctx<'_>, op: &mut Op) {
        op.phase_deadline_ms = ctx.now_ms.saturating_add(self.settings.request_timeout_ms);
        op.next_resend_ms = ctx.now_ms.saturating_add(self.settings.resend_interval_ms);
        self.timers.schedule(op.id.seq, op.wake_ms());
        let message = op.phase_message();
        for to in op.pending() {
            ctx.out.send(to, message.clone());
        }
    }

    fn time_out(&mut self, ctx: &mut Ctx<'_>, op: &Op) {
        let progress = op.describe_progress();
        let timeout_ms = self.settings.request_timeout_ms;
        let error = match (&op.phase, &op.kind) {
            (Phase::Propagate { .. }, OpKind::Put { .. }) => ClientError::Indeterminate {
                reason: format!("the write was acknowledged by {progress} within {timeout_ms} ms"),
            },
            (Phase::Query { .. }, OpKind::Put { .. }) => ClientError::Unavailable {
                reason: format!(
                    "the tag query was answered by {progress} within {timeout_ms} ms; \
                     nothing was written"
                ),
            },
            (Phase::Query { .. }, OpKind::Get) => ClientError::Unavailable {
                reason: format!("the read was answered by {progress} within {timeout_ms} ms"),
            },
            (Phase::Propagate { .. }, OpKind::Get) => ClientError::Unavailable {
                reason: format!("the read's write-back reached {progress} within {timeout_ms} ms"),
            },
        };
        self.finish(ctx, op, ClientReply::Error(error));
    }

    /// Replies and forgets the operation (its late replies become stale).
    fn finish(&mut self, ctx: &mut Ctx<'_>, op: &Op, reply: ClientReply) {
        self.timers.cancel(op.id.seq);
        self.count_reply(ctx, &reply);
        ctx.out.reply(op.client, reply);
    }

    fn count_reply(&self, ctx: &mut Ctx<'_>, reply: &ClientReply) {
        match reply {
            ClientReply::Value(_)
            | ClientReply::Done
            | ClientReply::Siblings { .. }
            | ClientReply::Keys { .. }
            | ClientReply::Updated { .. }
            // The update completed: it found a value `Add` cannot use.
            | ClientReply::Error(ClientError::NotAnInteger) => ctx.counters.succeeded += 1,
            ClientReply::Error(ClientError::Indeterminate { .. }) => {
                ctx.counters.indeterminate += 1
            }
            ClientReply::Error(_) => ctx.counters.unavailable += 1,
        }
    }
}

/// A get's phase 2: replicas that answered with `tag` already hold it.
fn write_back_phase(tag: Tag, value: Option<Vec<u8>>, holders: BTreeSet<NodeId>) -> Phase {
    Phase::Propagate {
        tag,
        value,
        acked: holders,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::node::io::Output;
    use crate::storage::blockstore::MemoryStore;
    use crate::storage::lsm::{LsmEngine, LsmOptions};

    fn sent_ids(out: &mut Outbox) -> Vec<(NodeId, OpId)> {
        let mut ids = Vec::new();
        while let Some(output) = out.pop() {
            if let Output::Send { to, message } = output {
                if let Some(req) = message.op_id() {
                    ids.push((to, req));
                }
            }
        }
        ids
    }

    /// Regression (review finding): answers to the attempt before a `Stale` restart may
    /// predate the replica's sync; they must not count toward the new sets' quorum.
    #[test]
    fn a_restart_after_stale_ignores_answers_to_the_earlier_attempt() {
        let engine =
            LsmEngine::open(Arc::new(MemoryStore::new()), LsmOptions::tiny()).expect("engine");
        let mut out = Outbox::new(NodeId(9), 1024);
        let mut counters = NodeCounters::default();
        let mut coordinator = Coordinator::new(
            NodeId(9),
            1,
            TagIssuer::new(0, 1 << 20),
            CoordinatorSettings {
                request_timeout_ms: 1000,
                resend_interval_ms: 250,
                in_flight_requests_max: 8,
            },
        );
        let old_sets = vec![vec![NodeId(1), NodeId(2), NodeId(3)]];
        let new_sets = vec![vec![NodeId(1), NodeId(2), NodeId(4)]];
        let mut ctx = Ctx {
            now_ms: 0,
            out: &mut out,
            engine: &engine,
            counters: &mut counters,
        };
        coordinator.start(
            &mut ctx,
            RequestId(1),
            b"k".to_vec(),
            OpKind::Get,
            old_sets,
            1,
            |_| true,
        );
        let first = sent_ids(ctx.out)[0].1;
        coordinator.on_stale(&mut ctx, first, 2, |_| new_sets.clone());
        let second = sent_ids(ctx.out)[0].1;
        assert_ne!(first, second, "the restarted attempt has its own id");
        let stale_answer = |from: u64| {
            let message = PeerMessage::ReadAck {
                req: first,
                tag: Tag::ZERO,
                value: None,
            };
            (from, message)
        };
        // Old-attempt answers from 1 and 4 would make a majority of {1, 2, 4}.
        for (from, message) in [stale_answer(1), stale_answer(4)] {
            coordinator.on_reply(&mut ctx, NodeId(from), message);
        }
        assert_eq!(
            coordinator.in_flight(),
            1,
            "still waiting for the new attempt"
        );
        while let Some(output) = ctx.out.pop() {
            assert!(
                !matches!(output, Output::Reply { .. }),
                "answered from stale replies"
            );
        }
    }
}

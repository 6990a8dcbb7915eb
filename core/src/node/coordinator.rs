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

use std::collections::{BTreeMap, BTreeSet};

use crate::protocol::{ClientError, ClientReply, OpId, PeerMessage, RequestId};
use crate::ring::NodeId;
use crate::storage::Engine;
use crate::versioning::Tag;

use super::op::{quorum_of, Op, OpKind, Phase};
use super::outbox::Outbox;
use super::status::NodeCounters;
use super::tags::{IssueError, TagIssuer};
use super::timers::TimerQueue;

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
    /// One wake-up per in-flight operation: its phase deadline or next resend.
    timers: TimerQueue<u64>,
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
            timers: TimerQueue::default(),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.ops.len()
    }

    pub fn next_timeout_ms(&self) -> Option<u64> {
        self.timers.next_ms()
    }

    /// Starts a linearizable operation on `key` (already validated) whose replicas are
    /// `replicas`, of which `believed_alive` are not known dead.
    pub fn start(
        &mut self,
        ctx: &mut Ctx<'_>,
        client: RequestId,
        key: Vec<u8>,
        kind: OpKind,
        replicas: Vec<NodeId>,
        believed_alive: usize,
    ) {
        if self.ops.len() >= self.settings.in_flight_requests_max {
            ctx.counters.overloaded += 1;
            ctx.out
                .reply(client, ClientReply::Error(ClientError::Overloaded));
            return;
        }
        let quorum = quorum_of(replicas.len());
        if replicas.is_empty() || believed_alive < quorum {
            ctx.counters.unavailable += 1;
            ctx.counters.refused_unreachable += 1;
            let reason = format!(
                "only {believed_alive} of the key's {} replicas are believed alive, {quorum} \
                 needed; nothing was sent",
                replicas.len()
            );
            ctx.out.reply(
                client,
                ClientReply::Error(ClientError::Unavailable { reason }),
            );
            return;
        }
        let id = OpId {
            coordinator: self.me,
            incarnation: self.incarnation,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        let mut op = Op::new(id, client, key, kind, replicas);
        self.begin_phase(ctx, &mut op);
        self.ops.insert(id.seq, op);
    }

    /// A `ReadTagAck`, `ReadAck` or `WriteAck` from `from`.
    pub fn on_reply(&mut self, ctx: &mut Ctx<'_>, from: NodeId, message: PeerMessage) {
        let Some(req) = message.op_id() else {
            return;
        };
        let mine = req.coordinator == self.me && req.incarnation == self.incarnation;
        let Some(mut op) = mine.then(|| self.ops.remove(&req.seq)).flatten() else {
            ctx.counters.stale_replies += 1;
            return;
        };
        let counted = match message {
            PeerMessage::ReadTagAck { tag, .. } => op.record_query(from, tag, None, false),
            PeerMessage::ReadAck { tag, value, .. } => op.record_query(from, tag, value, true),
            PeerMessage::WriteAck { .. } => op.record_ack(from),
            _ => false,
        };
        if !counted {
            ctx.counters.stale_replies += 1;
        }
        if counted && op.has_quorum() {
            if let Some(op) = self.advance(ctx, op) {
                self.ops.insert(req.seq, op);
            }
        } else {
            self.ops.insert(req.seq, op);
        }
    }

    /// Fails operations whose phase deadline passed; resends for the others that are due.
    pub fn on_timers(&mut self, ctx: &mut Ctx<'_>) {
        while let Some(seq) = self.timers.pop_due(ctx.now_ms) {
            let Some(mut op) = self.ops.remove(&seq) else {
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

    /// The current phase reached its quorum: moves to phase 2 or finishes. Returns the
    /// operation if it is still in flight.
    fn advance(&mut self, ctx: &mut Ctx<'_>, mut op: Op) -> Option<Op> {
        let next = match (&op.phase, &op.kind) {
            (Phase::Propagate { value, .. }, OpKind::Get) => Err(ClientReply::Value(value.clone())),
            (Phase::Propagate { .. }, OpKind::Put { .. }) => Err(ClientReply::Done),
            (Phase::Query { best_tag, .. }, OpKind::Put { value }) => {
                match self.tags.issue(*best_tag, self.me, ctx.engine) {
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
                if holders.len() >= op.quorum {
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
        let (answered, n, q) = (op.answered(), op.replicas.len(), op.quorum);
        let timeout_ms = self.settings.request_timeout_ms;
        let error = match (&op.phase, &op.kind) {
            (Phase::Propagate { .. }, OpKind::Put { .. }) => ClientError::Indeterminate {
                reason: format!(
                    "{answered} of {n} replicas acknowledged the write within {timeout_ms} ms, \
                     {q} needed"
                ),
            },
            (Phase::Query { .. }, OpKind::Put { .. }) => ClientError::Unavailable {
                reason: format!(
                    "{answered} of {n} replicas answered the tag query within {timeout_ms} ms, \
                     {q} needed; nothing was written"
                ),
            },
            (Phase::Query { .. }, OpKind::Get) => ClientError::Unavailable {
                reason: format!(
                    "{answered} of {n} replicas answered the read within {timeout_ms} ms, \
                     {q} needed"
                ),
            },
            (Phase::Propagate { .. }, OpKind::Get) => ClientError::Unavailable {
                reason: format!(
                    "the read's write-back reached {answered} of {n} replicas within \
                     {timeout_ms} ms, {q} needed"
                ),
            },
        };
        self.finish(ctx, op, ClientReply::Error(error));
    }

    /// Replies and forgets the operation (its late replies become stale).
    fn finish(&mut self, ctx: &mut Ctx<'_>, op: &Op, reply: ClientReply) {
        self.timers.cancel(op.id.seq);
        match &reply {
            ClientReply::Value(_) | ClientReply::Done | ClientReply::Siblings { .. } => {
                ctx.counters.succeeded += 1
            }
            ClientReply::Error(ClientError::Indeterminate { .. }) => {
                ctx.counters.indeterminate += 1
            }
            ClientReply::Error(_) => ctx.counters.unavailable += 1,
        }
        ctx.out.reply(op.client, reply);
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

//! The coordinator side of eventual mode: client gets and puts over a sloppy quorum.
//!
//! Put: `EventualUpdate` to the dot issuer (this node if it serves the key, else the
//! first node of the sloppy quorum); its answer is the new state, which goes as
//! `EventualMerge` to the rest of the quorum; W durable copies (the issuer's included) →
//! `Done`. A timeout or refusal after the issuer may have applied the update is
//! `Indeterminate` (the write may still spread: every copy merges into the others).
//!
//! Get: `EventualRead` to the quorum, R answers → reply with their merge. The operation
//! stays until every node answered or the deadline passed, merging later answers too,
//! and then sends the merged state to every answering node that was behind it (read
//! repair: fire and forget, replicas merge idempotently).
//!
//! Answers count once per node and only from the operation's quorum. Messages to nodes
//! that have not answered are resent every `resend_interval_ms` (replica handlers are
//! idempotent; the issuer remembers recent updates so a resend does not issue a second
//! dot).

use std::collections::{BTreeMap, BTreeSet};

use crate::protocol::{
    ClientError, ClientReply, EventualRefusal, OpId, Oversized, PeerMessage, RequestId,
    SiblingState,
};
use crate::ring::NodeId;
use crate::versioning::{Dot, VersionVector};

use super::context::{decode_context, encode_context};
use super::sloppy::{sloppy_targets, Target};
use super::{EvCtx, Eventual};

/// What a node answered a read with, enough to tell whether it is behind a merge (a
/// merge only adds: a state equals the merge iff it has the same seen set and dots).
type Summary = (VersionVector, Vec<Dot>);

fn summary(state: &SiblingState) -> Summary {
    (state.context(), state.iter().map(|(dot, _)| dot).collect())
}

#[derive(Debug)]
pub(crate) struct EvOp {
    id: OpId,
    client: RequestId,
    key: Vec<u8>,
    targets: Vec<Target>,
    kind: EvKind,
    deadline_ms: u64,
    next_resend_ms: u64,
}

#[derive(Debug)]
enum EvKind {
    Get {
        answers: BTreeMap<NodeId, Summary>,
        merged: SiblingState,
        replied: bool,
    },
    Put {
        issuer: Target,
        phase: PutPhase,
    },
}

#[derive(Debug)]
enum PutPhase {
    /// Waiting for the issuer's `EventualUpdateAck`.
    Update {
        context: VersionVector,
        value: Option<Vec<u8>>,
    },
    /// Spreading the issuer's resulting state.
    Replicate {
        state: SiblingState,
        acked: BTreeSet<NodeId>,
        refused: BTreeMap<NodeId, EventualRefusal>,
    },
}

impl EvOp {
    fn wake_ms(&self) -> u64 {
        match &self.kind {
            // After the reply a get only collects answers for read repair: no resends.
            EvKind::Get { replied: true, .. } => self.deadline_ms,
            _ => self.deadline_ms.min(self.next_resend_ms),
        }
    }

    fn target(&self, node: NodeId) -> Option<Target> {
        self.targets.iter().copied().find(|t| t.node == node)
    }

    /// Nodes of the current phase that have not answered.
    fn pending(&self) -> Vec<Target> {
        match &self.kind {
            EvKind::Get { answers, .. } => self
                .targets
                .iter()
                .copied()
                .filter(|t| !answers.contains_key(&t.node))
                .collect(),
            EvKind::Put {
                issuer,
                phase: PutPhase::Update { .. },
            } => vec![*issuer],
            EvKind::Put {
                phase: PutPhase::Replicate { acked, refused, .. },
                ..
            } => self
                .targets
                .iter()
                .copied()
                .filter(|t| !acked.contains(&t.node) && !refused.contains_key(&t.node))
                .collect(),
        }
    }

    /// The current phase's message to `target`.
    fn message_to(&self, target: Target) -> PeerMessage {
        let (req, key) = (self.id, self.key.clone());
        match &self.kind {
            EvKind::Get { .. } => PeerMessage::EventualRead { req, key },
            EvKind::Put {
                phase: PutPhase::Update { context, value },
                ..
            } => PeerMessage::EventualUpdate {
                req,
                key,
                context: context.clone(),
                value: value.clone(),
                hint_for: target.hint_for,
            },
            EvKind::Put {
                phase: PutPhase::Replicate { state, .. },
                ..
            } => PeerMessage::EventualMerge {
                req,
                key,
                state: state.clone(),
                hint_for: target.hint_for,
            },
        }
    }
}

impl Eventual {
    fn targets_for(&self, ctx: &EvCtx<'_>, key: &[u8]) -> Vec<Target> {
        let (detector, now_ms) = (ctx.detector, ctx.now_ms);
        sloppy_targets(ctx.layout, key, |node| {
            detector.believed_alive(node, now_ms)
        })
    }

    /// Refuses when fewer than `needed` nodes could serve the key; nothing is sent.
    fn enough_targets(
        ctx: &mut EvCtx<'_>,
        client: RequestId,
        targets: &[Target],
        needed: usize,
    ) -> bool {
        if targets.len() >= needed {
            return true;
        }
        ctx.counters.unavailable += 1;
        ctx.counters.refused_unreachable += 1;
        let reason = format!(
            "only {} nodes believed alive can serve the key (eventual mode, sloppy quorum), \
             {needed} needed; nothing was sent",
            targets.len()
        );
        ctx.out.reply(
            client,
            ClientReply::Error(ClientError::Unavailable { reason }),
        );
        false
    }

    pub(super) fn start_get(&mut self, ctx: &mut EvCtx<'_>, client: RequestId, key: Vec<u8>) {
        let targets = self.targets_for(ctx, &key);
        if !Self::enough_targets(ctx, client, &targets, self.settings.read_quorum) {
            return;
        }
        let op = EvOp {
            id: self.next_op_id(),
            client,
            key,
            targets,
            kind: EvKind::Get {
                answers: BTreeMap::new(),
                merged: SiblingState::new(),
                replied: false,
            },
            deadline_ms: 0,
            next_resend_ms: 0,
        };
        self.begin_phase(ctx, op);
    }

    /// A put (`value: Some`) or delete with the client's raw context.
    pub(super) fn start_put(
        &mut self,
        ctx: &mut EvCtx<'_>,
        client: RequestId,
        key: Vec<u8>,
        context: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
    ) {
        let context = match context.map(|bytes| self.parse_context(&bytes)) {
            None => VersionVector::new(),
            Some(Ok(context)) => context,
            Some(Err(error)) => {
                ctx.counters.rejected += 1;
                ctx.out.reply(client, ClientReply::Error(error));
                return;
            }
        };
        let targets = self.targets_for(ctx, &key);
        if !Self::enough_targets(ctx, client, &targets, self.settings.write_quorum) {
            return;
        }
        // The issuer must keep its state for the key (dot uniqueness): a node of the
        // sloppy quorum. This node if it is one (no extra hop), else the first.
        let Some(issuer) = targets
            .iter()
            .copied()
            .find(|t| t.node == self.me)
            .or_else(|| targets.first().copied())
        else {
            return; // unreachable: enough_targets needs W >= 1 of them
        };
        let op = EvOp {
            id: self.next_op_id(),
            client,
            key,
            targets,
            kind: EvKind::Put {
                issuer,
                phase: PutPhase::Update { context, value },
            },
            deadline_ms: 0,
            next_resend_ms: 0,
        };
        self.begin_phase(ctx, op);
    }

    fn parse_context(&self, bytes: &[u8]) -> Result<VersionVector, ClientError> {
        let limit_bytes = self.settings.context_size_bytes_max;
        if bytes.len() > limit_bytes {
            return Err(ClientError::TooLarge {
                what: Oversized::Context,
                size_bytes: bytes.len() as u64,
                limit_bytes: limit_bytes as u64,
            });
        }
        decode_context(bytes).map_err(|error| ClientError::InvalidContext {
            reason: error.to_string(),
        })
    }

    /// Sends the phase's message to every pending node, arms deadline and resend, and
    /// keeps the operation.
    fn begin_phase(&mut self, ctx: &mut EvCtx<'_>, mut op: EvOp) {
        op.deadline_ms = ctx.now_ms.saturating_add(self.settings.request_timeout_ms);
        op.next_resend_ms = ctx.now_ms.saturating_add(self.settings.resend_interval_ms);
        for target in op.pending() {
            ctx.out.send(target.node, op.message_to(target));
        }
        self.keep(op);
    }

    fn keep(&mut self, op: EvOp) {
        self.timers.schedule(op.id.seq, op.wake_ms());
        self.ops.insert(op.id.seq, op);
    }

    pub(super) fn on_op_timers(&mut self, ctx: &mut EvCtx<'_>) {
        while let Some(seq) = self.timers.pop_due(ctx.now_ms) {
            let Some(mut op) = self.ops.remove(&seq) else {
                continue;
            };
            if ctx.now_ms >= op.deadline_ms {
                self.time_out(ctx, op);
                continue;
            }
            if ctx.now_ms >= op.next_resend_ms {
                for target in op.pending() {
                    ctx.counters.retransmissions += 1;
                    ctx.out.send(target.node, op.message_to(target));
                }
                op.next_resend_ms = ctx.now_ms.saturating_add(self.settings.resend_interval_ms);
            }
            self.keep(op);
        }
    }

    /// A reply for in-flight operation `seq`.
    pub(super) fn on_op_reply(
        &mut self,
        ctx: &mut EvCtx<'_>,
        from: NodeId,
        seq: u64,
        reply: PeerMessage,
    ) {
        let Some(mut op) = self.ops.remove(&seq) else {
            return;
        };
        let Some(target) = op.target(from) else {
            ctx.counters.stale_replies += 1;
            self.ops.insert(seq, op);
            return;
        };
        let read_quorum = self.settings.read_quorum;
        let write_quorum = self.settings.write_quorum;
        match (&mut op.kind, reply) {
            (
                EvKind::Get {
                    answers,
                    merged,
                    replied,
                },
                PeerMessage::EventualReadAck { state, .. },
            ) if !answers.contains_key(&from) => {
                merged.merge(&state);
                answers.insert(from, summary(&state));
                if !*replied && answers.len() >= read_quorum {
                    *replied = true;
                    let reply = siblings_reply(merged);
                    reply_to_client(ctx, op.client, reply);
                }
                if answers.len() == op.targets.len() {
                    self.finish_get(ctx, op);
                    return;
                }
            }
            (
                EvKind::Put {
                    issuer,
                    phase: PutPhase::Update { .. },
                },
                PeerMessage::EventualUpdateAck { state, .. },
            ) if issuer.node == from => {
                op.kind = EvKind::Put {
                    issuer: target,
                    phase: PutPhase::Replicate {
                        state,
                        acked: BTreeSet::from([from]),
                        refused: BTreeMap::new(),
                    },
                };
                if write_quorum <= 1 {
                    // W = 1: the issuer's copy suffices; the others still get the state
                    // (once, not waited for).
                    for pending in op.pending() {
                        ctx.out.send(pending.node, op.message_to(pending));
                    }
                    self.finish(ctx, op, ClientReply::Done);
                } else {
                    self.begin_phase(ctx, op);
                }
                return;
            }
            (
                EvKind::Put {
                    issuer,
                    phase: PutPhase::Update { .. },
                },
                PeerMessage::EventualRefused { reason, .. },
            ) if issuer.node == from => {
                // Refused at the issuer: nothing was written anywhere.
                let error = refusal_error(from, issuer.hint_for, &reason);
                self.finish(ctx, op, ClientReply::Error(error));
                return;
            }
            (
                EvKind::Put {
                    phase: PutPhase::Replicate { acked, refused, .. },
                    ..
                },
                PeerMessage::EventualMergeAck { .. },
            ) if !acked.contains(&from) && !refused.contains_key(&from) => {
                acked.insert(from);
                if acked.len() >= write_quorum {
                    self.finish(ctx, op, ClientReply::Done);
                    return;
                }
            }
            (
                EvKind::Put {
                    phase: PutPhase::Replicate { acked, refused, .. },
                    ..
                },
                PeerMessage::EventualRefused { reason, .. },
            ) if !acked.contains(&from) && !refused.contains_key(&from) => {
                refused.insert(from, reason);
                let (acked_count, refusals) = (acked.len(), describe_refusals(refused));
                if acked_count + op.pending().len() < write_quorum {
                    let error = ClientError::Indeterminate {
                        reason: format!(
                            "the write is durable at {acked_count} nodes, too few can still \
                             store it ({refusals} refused); {write_quorum} needed"
                        ),
                    };
                    self.finish(ctx, op, ClientReply::Error(error));
                    return;
                }
            }
            _ => ctx.counters.stale_replies += 1,
        }
        self.ops.insert(seq, op);
    }

    fn time_out(&mut self, ctx: &mut EvCtx<'_>, op: EvOp) {
        let timeout_ms = self.settings.request_timeout_ms;
        let n = op.targets.len();
        let error = match &op.kind {
            EvKind::Get { replied: true, .. } => {
                self.finish_get(ctx, op);
                return;
            }
            EvKind::Get { answers, .. } => ClientError::Unavailable {
                reason: format!(
                    "{} of {n} nodes answered the eventual read within {timeout_ms} ms, {} \
                     needed",
                    answers.len(),
                    self.settings.read_quorum
                ),
            },
            EvKind::Put {
                issuer,
                phase: PutPhase::Update { .. },
            } => ClientError::Indeterminate {
                reason: format!(
                    "node {} (the write's dot issuer) did not confirm within {timeout_ms} ms",
                    issuer.node
                ),
            },
            EvKind::Put {
                phase: PutPhase::Replicate { acked, .. },
                ..
            } => ClientError::Indeterminate {
                reason: format!(
                    "{} of {n} nodes stored the write within {timeout_ms} ms, {} needed",
                    acked.len(),
                    self.settings.write_quorum
                ),
            },
        };
        if matches!(op.kind, EvKind::Get { .. }) {
            reply_to_client(ctx, op.client, ClientReply::Error(error));
            self.finish_get(ctx, op);
        } else {
            self.finish(ctx, op, ClientReply::Error(error));
        }
    }

    /// Replies to a put and forgets it (late replies become stale).
    fn finish(&mut self, ctx: &mut EvCtx<'_>, op: EvOp, reply: ClientReply) {
        self.timers.cancel(op.id.seq);
        reply_to_client(ctx, op.client, reply);
    }

    /// A get is over (all answered, or the deadline passed; its client has its reply):
    /// read repair, then forget it.
    fn finish_get(&mut self, ctx: &mut EvCtx<'_>, op: EvOp) {
        self.timers.cancel(op.id.seq);
        let EvKind::Get {
            answers, merged, ..
        } = &op.kind
        else {
            return;
        };
        let newest = summary(merged);
        let behind: Vec<Target> = answers
            .iter()
            .filter(|(_, answered)| **answered != newest)
            .filter_map(|(node, _)| op.target(*node))
            .collect();
        if behind.is_empty() {
            return;
        }
        // The merge of several states may exceed what one message may carry; replicas
        // would refuse it anyway. Siblings resolved by a client's write shrink it again.
        let fits = postcard::to_allocvec(merged)
            .is_ok_and(|bytes| bytes.len() <= self.settings.state_size_bytes_max);
        if !fits {
            return;
        }
        for target in behind {
            ctx.counters.read_repairs += 1;
            ctx.out.send(
                target.node,
                PeerMessage::EventualMerge {
                    req: op.id,
                    key: op.key.clone(),
                    state: merged.clone(),
                    hint_for: target.hint_for,
                },
            );
        }
    }
}

fn reply_to_client(ctx: &mut EvCtx<'_>, client: RequestId, reply: ClientReply) {
    match &reply {
        ClientReply::Value(_)
        | ClientReply::Done
        | ClientReply::Siblings { .. }
        | ClientReply::Keys { .. }
        | ClientReply::Updated { .. } => ctx.counters.succeeded += 1,
        ClientReply::Error(ClientError::Indeterminate { .. }) => ctx.counters.indeterminate += 1,
        ClientReply::Error(ClientError::TooLarge { .. } | ClientError::InvalidContext { .. }) => {
            ctx.counters.rejected += 1
        }
        ClientReply::Error(_) => ctx.counters.unavailable += 1,
    }
    ctx.out.reply(client, reply);
}

/// The client's view of a merged state.
fn siblings_reply(merged: &SiblingState) -> ClientReply {
    match encode_context(&merged.context()) {
        Ok(context) => ClientReply::Siblings {
            values: merged.values().cloned().collect(),
            context,
        },
        Err(error) => ClientReply::Error(ClientError::Unavailable {
            reason: format!("encoding the causal context failed: {error}"),
        }),
    }
}

/// The client error for a refusal at the issuer (nothing was written).
fn refusal_error(
    issuer: NodeId,
    hint_for: Option<NodeId>,
    reason: &EventualRefusal,
) -> ClientError {
    match reason {
        EventualRefusal::HintsFull { hints_queued_max } => ClientError::Unavailable {
            reason: format!(
                "node {issuer}, standing in for {}, already holds its maximum of \
                 {hints_queued_max} hints; nothing was written",
                hint_for.map_or_else(|| "another node".to_string(), |id| id.to_string())
            ),
        },
        EventualRefusal::TooLarge {
            size_bytes,
            limit_bytes,
        } => ClientError::TooLarge {
            what: Oversized::Siblings,
            size_bytes: *size_bytes,
            limit_bytes: *limit_bytes,
        },
        EventualRefusal::CounterExhausted => ClientError::InvalidContext {
            reason: format!("the context's counter for node {issuer} is exhausted"),
        },
    }
}

fn describe_refusals(refused: &BTreeMap<NodeId, EventualRefusal>) -> String {
    refused
        .iter()
        .map(|(node, reason)| match reason {
            EventualRefusal::HintsFull { .. } => format!("{node}: hint queue full"),
            EventualRefusal::TooLarge { .. } => format!("{node}: sibling state too large"),
            EventualRefusal::CounterExhausted => format!("{node}: counter exhausted"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

//! Conditional writes (`ClientRequest::Update`): one CASPaxos round per update, on the
//! same register ABD puts and gets use, with register tags as ballots.
//!
//! A round: `Prepare(b)` to every replica of the key, `b` a fresh tag above everything
//! this update has seen. A replica promises `b` durably iff `b` is above its tag and
//! not below its promise, and answers its register (`replica::on_prepare`). With a
//! majority of promises (of every replica set), the highest tag's value is the
//! current value; the update is evaluated on it and `Accept(b, v)` stores the result
//! (or the current value again when the condition fails, so what the update reports
//! is on a majority, as a read's write-back would make it; a round that changes
//! nothing still accepts, so no promise outlives its round). A majority of acks: done.
//!
//! Why this is linearizable with puts and gets (ARCHITECTURE.md, "Conditional writes"):
//! a replica that promised `b` refuses every store below `b` (puts' `Write`s, reads'
//! write-backs, anti-entropy pushes), so no version below `b` can become visible on a
//! majority between the round's read and its accept without the round having read it;
//! versions above `b` are ordered after the round, as tags order everything.
//!
//! Refusals name the fence to beat; a round that can no longer reach a majority starts
//! another (a fresh `OpId`, so the earlier round's late answers never count), after a
//! jittered pause from the second retry on, at most [`UPDATE_ROUNDS_MAX`] rounds. When
//! a retry follows an accept that may have landed, the new round's read decides: the
//! update's own earlier ballot as the highest tag means that accept is the current
//! value (it is completed at the new ballot with the result it computed then); a
//! highest tag below every earlier ballot means none of them can ever become visible
//! (the new promises fence them on a majority) and the update is evaluated afresh; a
//! higher foreign tag means a later write may have built on it: `Indeterminate`,
//! unless every earlier accept stored the value its round read (a read, a failed
//! condition: the same whether it landed or not), when it is evaluated afresh too.
//! Out of rounds: `Contention` if no accept that changes the value was ever sent
//! (nothing happened), else `Indeterminate`. An accept that every replica refused while holding a smaller tag
//! was stored nowhere (tags only grow, and a refused ballot is refused forever), so it
//! is forgotten before the next round. A refusal from a replica holding a larger tag
//! proves nothing: an earlier copy may have landed there, its acknowledgement lost.
//!
//! **Batches.** One coordinator runs one round per key at a time: updates of a key
//! that arrive while a round on it is in flight wait, and the next round takes them
//! all (up to [`UPDATE_BATCH_MAX`]), applies them in arrival order to the value it
//! reads and accepts the final value. They are linearized one after the other at that
//! round's ballot, each answered with its own result. A hot counter incremented
//! through one node costs one round per batch, not one per increment, and its updates
//! never duel with each other.
//!
//! **Consensus reads and repair.** A get whose write-back a promise refused, or a
//! replica whose anti-entropy push a promise refused, cannot make progress through
//! ABD while that promise stands (its round's coordinator may be gone). Such a get
//! joins the key's batch as a read (answered the round's value), and the replica
//! starts a round with an empty batch: both rounds end with an accept at a ballot
//! above the promise, which lifts the fence on a majority; anti-entropy spreads the
//! rest.

use std::collections::{BTreeMap, BTreeSet};

use crate::protocol::{ClientError, ClientReply, OpId, PeerMessage, RequestId, Update};
use crate::rand::SplitMix64;
use crate::ring::NodeId;
use crate::versioning::Tag;

use super::super::op::{describe_sets, quorum_of};
use super::super::tags::IssueError;
use super::{Coordinator, Ctx, RESTARTS_MAX};

/// Rounds one update tries before answering `Contention` (or `Indeterminate`).
pub(crate) const UPDATE_ROUNDS_MAX: u32 = 8;
/// Updates of one key one round applies at most.
pub(crate) const UPDATE_BATCH_MAX: usize = 256;
/// The longest pause between rounds, in resend intervals (the pause doubles per round
/// up to this, and is drawn uniformly below it).
const BACKOFF_INTERVALS_MAX: u64 = 8;

/// An accept this round sent: its ballot, value and the replies it stands for.
#[derive(Debug, Clone)]
struct Accepted {
    ballot: Tag,
    value: Option<Vec<u8>>,
    replies: Vec<ClientReply>,
    /// The value differs from what the round read. An accept that changes nothing is
    /// the same whether or not it landed, so it never makes a later round uncertain.
    changes: bool,
}

#[derive(Debug)]
enum Phase {
    /// Waiting before the next round (contention).
    Pause,
    Prepare {
        ballot: Tag,
        promised: BTreeMap<NodeId, (Tag, Option<Vec<u8>>)>,
        refused: BTreeSet<NodeId>,
    },
    Accept {
        ballot: Tag,
        value: Option<Vec<u8>>,
        replies: Vec<ClientReply>,
        acked: BTreeSet<NodeId>,
        refused: BTreeSet<NodeId>,
        /// A refusing replica held a larger tag: it may have stored an earlier copy
        /// of this accept (acknowledgement lost) before that tag replaced it.
        maybe_held: bool,
    },
}

#[derive(Debug)]
pub(crate) struct UpdateOp {
    id: OpId,
    key: Vec<u8>,
    /// What this round does, in order, with the clients to answer: an update, or a
    /// read (`None`). Empty for a repair round.
    batch: Vec<(RequestId, Option<Update>)>,
    /// The key's replica sets (two during a layout change): every phase needs a
    /// majority of each.
    sets: Vec<Vec<NodeId>>,
    epoch: u64,
    rounds: u32,
    restarts: u32,
    /// Accepts sent, oldest first (one per round at most).
    accepted: Vec<Accepted>,
    /// The largest tag answers named: the next ballot exceeds it.
    above: Tag,
    phase: Phase,
    phase_deadline_ms: u64,
    next_resend_ms: u64,
    /// No round starts after this: an update answers within about two request timeouts.
    deadline_ms: u64,
}

impl UpdateOp {
    fn replicas(&self) -> impl Iterator<Item = NodeId> + '_ {
        let mut seen = BTreeSet::new();
        self.sets
            .iter()
            .flatten()
            .copied()
            .filter(move |id| seen.insert(*id))
    }

    fn is_replica(&self, id: NodeId) -> bool {
        self.sets.iter().any(|set| set.contains(&id))
    }

    fn answered(&self, id: &NodeId) -> bool {
        match &self.phase {
            Phase::Pause => true,
            Phase::Prepare {
                promised, refused, ..
            } => promised.contains_key(id) || refused.contains(id),
            Phase::Accept { acked, refused, .. } => acked.contains(id) || refused.contains(id),
        }
    }

    fn pending(&self) -> Vec<NodeId> {
        self.replicas().filter(|id| !self.answered(id)).collect()
    }

    fn message(&self) -> Option<PeerMessage> {
        let (req, epoch, key) = (self.id, self.epoch, self.key.clone());
        match &self.phase {
            Phase::Pause => None,
            Phase::Prepare { ballot, .. } => Some(PeerMessage::Prepare {
                req,
                epoch,
                key,
                ballot: *ballot,
            }),
            Phase::Accept { ballot, value, .. } => Some(PeerMessage::Accept {
                req,
                epoch,
                key,
                ballot: *ballot,
                value: value.clone(),
            }),
        }
    }

    /// A majority of every replica set satisfies `holds`.
    fn majority(&self, holds: impl Fn(&NodeId) -> bool) -> bool {
        self.sets
            .iter()
            .all(|set| set.iter().filter(|id| holds(id)).count() >= quorum_of(set.len()))
    }

    /// The refusals leave some replica set without a possible majority.
    fn blocked(&self, refused: &BTreeSet<NodeId>) -> bool {
        !self.majority(|id| !refused.contains(id))
    }

    fn wake_ms(&self) -> u64 {
        self.phase_deadline_ms.min(self.next_resend_ms)
    }

    fn progress(&self) -> String {
        describe_sets(&self.sets, |id| match &self.phase {
            Phase::Pause => false,
            Phase::Prepare { promised, .. } => promised.contains_key(id),
            Phase::Accept { acked, .. } => acked.contains(id),
        })
    }

    /// Whether an accept that changes the value went out (it may have landed).
    fn may_have_changed(&self) -> bool {
        self.accepted.iter().any(|a| a.changes)
    }

    /// The error for an update that stops now: nothing happened unless an accept
    /// that changes the value went out.
    fn stopped(&self, reason: String) -> ClientError {
        if !self.may_have_changed() {
            ClientError::Unavailable {
                reason: format!("{reason}; nothing was written"),
            }
        } else {
            ClientError::Indeterminate { reason }
        }
    }
}

/// The value to store and the reply, for `update` applied to `current`. When it
/// does not apply, the value to store is `current` itself.
pub(crate) fn evaluate(update: &Update, current: Option<&[u8]>) -> (Option<Vec<u8>>, ClientReply) {
    let unchanged = current.map(<[u8]>::to_vec);
    match update {
        Update::Set { condition, value } => {
            if condition.holds(current) {
                let reply = ClientReply::Updated {
                    applied: true,
                    previous: unchanged,
                    current: value.clone(),
                };
                (value.clone(), reply)
            } else {
                let reply = ClientReply::Updated {
                    applied: false,
                    previous: unchanged.clone(),
                    current: unchanged.clone(),
                };
                (unchanged, reply)
            }
        }
        Update::Add { delta } => match current
            .map_or(Some(0), parse_integer)
            .and_then(|n| n.checked_add(*delta))
        {
            Some(sum) => {
                let sum = Some(sum.to_string().into_bytes());
                let reply = ClientReply::Updated {
                    applied: true,
                    previous: unchanged,
                    current: sum.clone(),
                };
                (sum, reply)
            }
            None => (unchanged, ClientReply::Error(ClientError::NotAnInteger)),
        },
    }
}

/// The value to store and each update's reply, for `batch` applied in order to
/// `current`.
fn evaluate_batch(
    batch: &[(RequestId, Option<Update>)],
    current: Option<Vec<u8>>,
) -> (Option<Vec<u8>>, Vec<ClientReply>) {
    let mut value = current;
    let replies = batch
        .iter()
        .map(|(_, update)| match update {
            Some(update) => {
                let (next, reply) = evaluate(update, value.as_deref());
                value = next;
                reply
            }
            None => ClientReply::Value(value.clone()),
        })
        .collect();
    (value, replies)
}

/// The integer in `bytes` as `Add` reads a value (absent is 0, checked by the caller):
/// the canonical decimal form of a signed 64-bit integer, what Redis's `INCR` accepts
/// (no sign but `-`, no leading zeros or spaces); `None` for anything else. Public so
/// hosts read counters by the same rule (the npm package's `getCounter`).
pub fn parse_integer(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let n: i64 = text.parse().ok()?;
    (n.to_string() == text).then_some(n)
}

impl Coordinator {
    /// Starts an update of `key` (validated) on replica sets `sets` at layout `epoch`.
    #[allow(clippy::too_many_arguments)]
    pub fn start_update(
        &mut self,
        ctx: &mut Ctx<'_>,
        client: RequestId,
        key: Vec<u8>,
        update: Update,
        sets: Vec<Vec<NodeId>>,
        epoch: u64,
        believed_alive: impl Fn(NodeId) -> bool,
    ) {
        if !self.admit(ctx, client, &sets, believed_alive) {
            return;
        }
        self.enqueue_update(ctx, key, Some((client, Some(update))), sets, epoch);
    }

    /// Runs `item` in the key's next round: a new round if none is in flight here,
    /// else the batch of the one after it. `None`: a repair round (only if none is in
    /// flight: any round lifts the fence).
    pub(crate) fn enqueue_update(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: Vec<u8>,
        item: Option<(RequestId, Option<Update>)>,
        sets: Vec<Vec<NodeId>>,
        epoch: u64,
    ) {
        if let Some(waiting) = self.waiting_updates.get_mut(&key) {
            if let Some(item) = item {
                waiting.push(item);
                self.waiting_count += 1;
            }
            return;
        }
        self.waiting_updates.insert(key.clone(), Vec::new());
        self.launch_update(ctx, key, item.into_iter().collect(), sets, epoch);
    }

    /// A round for `batch`, the updates of `key` this coordinator runs next.
    fn launch_update(
        &mut self,
        ctx: &mut Ctx<'_>,
        key: Vec<u8>,
        batch: Vec<(RequestId, Option<Update>)>,
        sets: Vec<Vec<NodeId>>,
        epoch: u64,
    ) {
        let timeout_ms = self.settings.request_timeout_ms;
        let op = UpdateOp {
            id: self.fresh_id(),
            key,
            batch,
            sets,
            epoch,
            rounds: 0,
            restarts: 0,
            accepted: Vec::new(),
            above: Tag::ZERO,
            phase: Phase::Pause,
            phase_deadline_ms: 0,
            next_resend_ms: 0,
            deadline_ms: ctx.now_ms.saturating_add(timeout_ms.saturating_mul(2)),
        };
        self.begin_prepare(ctx, op);
    }

    /// Whether `req` is an update in flight (its answers go to [`Self::on_update_reply`]).
    pub(crate) fn is_update(&self, req: OpId) -> bool {
        self.is_mine(req) && self.updates.contains_key(&req.seq)
    }

    /// A `Promise`, `Refused` or `WriteAck` for update `req` from `from`.
    pub(crate) fn on_update_reply(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: NodeId,
        message: PeerMessage,
    ) {
        let Some(req) = message.op_id() else {
            return;
        };
        let Some(mut op) = self.take_update(req) else {
            ctx.counters.stale_replies += 1;
            return;
        };
        if !op.is_replica(from) || op.answered(&from) {
            ctx.counters.stale_replies += 1;
            self.updates.insert(req.seq, op);
            return;
        }
        match (&mut op.phase, message) {
            (Phase::Prepare { promised, .. }, PeerMessage::Promise { tag, value, .. }) => {
                op.above = op.above.max(tag);
                promised.insert(from, (tag, value));
                let Phase::Prepare { promised, .. } = &op.phase else {
                    return;
                };
                if op.majority(|id| promised.contains_key(id)) {
                    self.decide(ctx, op);
                    return;
                }
            }
            (Phase::Prepare { refused, .. }, PeerMessage::Refused { above, .. }) => {
                refused.insert(from);
                let refused = refused.clone();
                op.above = op.above.max(above);
                if op.blocked(&refused) {
                    ctx.counters.update_retries += 1;
                    self.next_round(ctx, op);
                    return;
                }
            }
            (
                Phase::Accept {
                    refused,
                    maybe_held,
                    ballot,
                    ..
                },
                PeerMessage::Refused { above, tag, .. },
            ) => {
                refused.insert(from);
                *maybe_held |= tag > *ballot;
                op.above = op.above.max(above);
                if let Some(op) = self.after_accept_refusal(ctx, op) {
                    self.updates.insert(op.id.seq, op);
                }
                return;
            }
            (Phase::Accept { acked, .. }, PeerMessage::WriteAck { .. }) => {
                acked.insert(from);
                let Phase::Accept { acked, replies, .. } = &op.phase else {
                    return;
                };
                if op.majority(|id| acked.contains(id)) {
                    let replies = replies.clone();
                    self.finish_update(ctx, &op, Outcome::Each(replies));
                    return;
                }
            }
            _ => ctx.counters.stale_replies += 1,
        }
        self.updates.insert(req.seq, op);
    }

    /// An accept was refused. Once the refusals leave no possible majority: if every
    /// replica refused it holding a smaller tag, it was stored nowhere and is
    /// forgotten; otherwise it may surface; either way the next round decides.
    /// While replicas that may still acknowledge have not answered, the round waits
    /// for them until its next resend (`on_update_timer`). Returns the op if it waits.
    fn after_accept_refusal(&mut self, ctx: &mut Ctx<'_>, mut op: UpdateOp) -> Option<UpdateOp> {
        let Phase::Accept {
            acked,
            refused,
            maybe_held,
            ..
        } = &op.phase
        else {
            return Some(op);
        };
        if !op.blocked(refused) {
            return Some(op);
        }
        if acked.is_empty() && !op.pending().is_empty() {
            return Some(op);
        }
        // Every replica refused, each holding a smaller tag: stored nowhere, ever.
        if acked.is_empty() && !maybe_held {
            op.accepted.pop();
        }
        ctx.counters.update_retries += 1;
        self.next_round(ctx, op);
        None
    }

    /// A majority promised: evaluate on the highest tag's value and accept.
    fn decide(&mut self, ctx: &mut Ctx<'_>, mut op: UpdateOp) {
        let Phase::Prepare {
            ballot, promised, ..
        } = &op.phase
        else {
            return;
        };
        let ballot = *ballot;
        let Some((best_tag, best_value)) = promised.values().max_by_key(|(tag, _)| *tag).cloned()
        else {
            return;
        };
        let (value, replies) = if let Some(own) = op.accepted.iter().find(|a| a.ballot == best_tag)
        {
            // This round's own accept is the current value: finish it.
            (own.value.clone(), own.replies.clone())
        } else if op.accepted.iter().any(|a| a.changes && a.ballot < best_tag) {
            let reason = format!(
                "a concurrent write replaced the key while this update's accept was \
                     being stored ({})",
                op.progress()
            );
            let error = ClientReply::Error(ClientError::Indeterminate { reason });
            self.finish_update(ctx, &op, Outcome::All(error));
            return;
        } else {
            // Always accepted, even when nothing changes: a round that only read
            // would leave its promise above the tag on a majority, fencing lower
            // writes and keeping tombstones from purge for no round's sake (the
            // simulator found both). The accept turns the promise into the tag.
            evaluate_batch(&op.batch, best_value.clone())
        };
        op.accepted.push(Accepted {
            ballot,
            changes: value != best_value,
            value: value.clone(),
            replies: replies.clone(),
        });
        op.phase = Phase::Accept {
            ballot,
            value,
            replies,
            acked: BTreeSet::new(),
            refused: BTreeSet::new(),
            maybe_held: false,
        };
        self.begin_update_phase(ctx, op);
    }

    /// Starts the next round after refusals, or gives up.
    fn next_round(&mut self, ctx: &mut Ctx<'_>, mut op: UpdateOp) {
        op.rounds += 1;
        if op.rounds >= UPDATE_ROUNDS_MAX || ctx.now_ms >= op.deadline_ms {
            let reason = format!(
                "{} rounds met concurrent conditional writes on the key",
                op.rounds
            );
            let error = if !op.may_have_changed() {
                ClientError::Contention { reason }
            } else {
                ClientError::Indeterminate { reason }
            };
            self.finish_update(ctx, &op, Outcome::All(ClientReply::Error(error)));
            return;
        }
        self.timers.cancel(op.id.seq);
        op.id = self.fresh_id();
        // The first retry follows a refusal that only taught the ballot to beat (most
        // often a tag this coordinator had not seen): no pause. Later ones are
        // contention: a jittered, growing pause lets one round finish.
        let pause_ms = if op.rounds == 1 {
            0
        } else {
            let window = self.settings.resend_interval_ms.max(1)
                * (1u64 << (op.rounds - 1)).min(BACKOFF_INTERVALS_MAX);
            let seed = op.id.seq ^ op.id.coordinator.0.rotate_left(32) ^ op.id.incarnation;
            SplitMix64::new(seed).below(window)
        };
        if pause_ms == 0 {
            self.begin_prepare(ctx, op);
            return;
        }
        op.phase = Phase::Pause;
        op.phase_deadline_ms = ctx.now_ms.saturating_add(pause_ms);
        op.next_resend_ms = op.phase_deadline_ms;
        self.timers.schedule(op.id.seq, op.wake_ms());
        self.updates.insert(op.id.seq, op);
    }

    /// A new round: a fresh ballot above everything seen, `Prepare` to every replica.
    fn begin_prepare(&mut self, ctx: &mut Ctx<'_>, mut op: UpdateOp) {
        match self.tags.issue(op.above, self.me, op.epoch, ctx.engine) {
            Ok(ballot) => {
                op.phase = Phase::Prepare {
                    ballot,
                    promised: BTreeMap::new(),
                    refused: BTreeSet::new(),
                };
                self.begin_update_phase(ctx, op);
            }
            Err(error) => {
                let reason = match error {
                    IssueError::Exhausted => "tag counter exhausted".into(),
                    IssueError::Storage(cause) => cause,
                };
                let error = op.stopped(reason);
                self.finish_update(ctx, &op, Outcome::All(ClientReply::Error(error)));
            }
        }
    }

    fn begin_update_phase(&mut self, ctx: &mut Ctx<'_>, mut op: UpdateOp) {
        op.phase_deadline_ms = ctx.now_ms.saturating_add(self.settings.request_timeout_ms);
        op.next_resend_ms = ctx.now_ms.saturating_add(self.settings.resend_interval_ms);
        if let Some(message) = op.message() {
            for to in op.pending() {
                ctx.out.send(to, message.clone());
            }
        }
        self.timers.schedule(op.id.seq, op.wake_ms());
        self.updates.insert(op.id.seq, op);
    }

    /// A timer for update `seq`, if it is one: pause over, deadline, or resend.
    pub(crate) fn on_update_timer(&mut self, ctx: &mut Ctx<'_>, seq: u64) -> bool {
        let Some(mut op) = self.updates.remove(&seq) else {
            return false;
        };
        if matches!(op.phase, Phase::Pause) {
            self.begin_prepare(ctx, op);
            return true;
        }
        if let Phase::Accept { refused, .. } = &op.phase {
            if op.blocked(refused) {
                // Refusals left no majority and the rest did not answer within a
                // resend interval: they may hold the accept; the next round decides.
                ctx.counters.update_retries += 1;
                self.next_round(ctx, op);
                return true;
            }
        }
        if ctx.now_ms >= op.phase_deadline_ms {
            let timeout_ms = self.settings.request_timeout_ms;
            let error = match &op.phase {
                Phase::Accept { .. } => ClientError::Indeterminate {
                    reason: format!(
                        "the accept was acknowledged by {} within {timeout_ms} ms",
                        op.progress()
                    ),
                },
                _ => op.stopped(format!(
                    "the prepare was answered by {} within {timeout_ms} ms",
                    op.progress()
                )),
            };
            self.finish_update(ctx, &op, Outcome::All(ClientReply::Error(error)));
            return true;
        }
        if let Some(message) = op.message() {
            for to in op.pending() {
                ctx.counters.retransmissions += 1;
                ctx.out.send(to, message.clone());
            }
        }
        op.next_resend_ms = ctx.now_ms.saturating_add(self.settings.resend_interval_ms);
        self.timers.schedule(seq, op.wake_ms());
        self.updates.insert(seq, op);
        true
    }

    /// A replica knows a newer layout epoch. Before any accept went out the update
    /// starts over on the new replica sets; after one, a round on other replicas
    /// could not tell whether it landed: `Indeterminate` (as a put in phase 2).
    pub(crate) fn on_update_stale(
        &mut self,
        ctx: &mut Ctx<'_>,
        req: OpId,
        epoch: u64,
        sets: impl Fn(&[u8]) -> Vec<Vec<NodeId>>,
    ) -> bool {
        let Some(mut op) = self.take_update(req) else {
            return false;
        };
        if op.epoch >= epoch {
            self.updates.insert(req.seq, op);
            return true;
        }
        let reason = format!("the cluster layout changed (epoch {} to {epoch})", op.epoch);
        if op.may_have_changed() || op.restarts >= RESTARTS_MAX {
            let error = op.stopped(reason);
            self.finish_update(ctx, &op, Outcome::All(ClientReply::Error(error)));
            return true;
        }
        self.timers.cancel(op.id.seq);
        op.id = self.fresh_id();
        op.restarts += 1;
        op.sets = sets(&op.key);
        op.epoch = epoch;
        op.above = Tag::ZERO;
        self.begin_prepare(ctx, op);
        true
    }

    fn take_update(&mut self, req: OpId) -> Option<UpdateOp> {
        if !self.is_mine(req) {
            return None;
        }
        self.updates.remove(&req.seq)
    }

    /// Answers every update of the round and starts the next round on the key with
    /// the updates that waited for this one.
    fn finish_update(&mut self, ctx: &mut Ctx<'_>, op: &UpdateOp, outcome: Outcome) {
        self.timers.cancel(op.id.seq);
        for (i, (client, update)) in op.batch.iter().enumerate() {
            let reply = match &outcome {
                Outcome::Each(replies) => replies.get(i).cloned(),
                // A read changes nothing, whatever became of the round's accept.
                Outcome::All(ClientReply::Error(ClientError::Indeterminate { reason }))
                    if update.is_none() =>
                {
                    Some(ClientReply::Error(ClientError::Unavailable {
                        reason: reason.clone(),
                    }))
                }
                Outcome::All(reply) => Some(reply.clone()),
            };
            // `Each` holds one reply per update (`evaluate_batch`).
            let reply = reply.unwrap_or_else(|| {
                ClientReply::Error(ClientError::Indeterminate {
                    reason: "internal: a batch reply is missing".into(),
                })
            });
            self.count_reply(ctx, &reply);
            ctx.out.reply(*client, reply);
        }
        let Some(mut waiting) = self.waiting_updates.remove(&op.key) else {
            return;
        };
        if waiting.is_empty() {
            return;
        }
        let rest = waiting.split_off(waiting.len().min(UPDATE_BATCH_MAX));
        self.waiting_count -= waiting.len();
        self.waiting_updates.insert(op.key.clone(), rest);
        // The finished round's replica sets: after a layout change replicas answer
        // `Stale` and the round starts over on the new ones.
        self.launch_update(ctx, op.key.clone(), waiting, op.sets.clone(), op.epoch);
    }
}

/// How a round ends for its batch.
enum Outcome {
    /// One reply per update, in batch order.
    Each(Vec<ClientReply>),
    /// The same reply (an error) for every update.
    All(ClientReply),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Condition;

    #[test]
    fn integers_parse_as_redis_incr_reads_them() {
        assert_eq!(parse_integer(b"42"), Some(42));
        assert_eq!(parse_integer(b"-7"), Some(-7));
        assert_eq!(parse_integer(b"0"), Some(0));
        assert_eq!(
            parse_integer(i64::MIN.to_string().as_bytes()),
            Some(i64::MIN)
        );
        for bad in [
            &b"007"[..],
            b"+1",
            b" 1",
            b"1 ",
            b"",
            b"-0",
            b"x",
            b"99999999999999999999",
        ] {
            assert_eq!(parse_integer(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_failed_condition_stores_the_current_value_and_reports_it() {
        let update = Update::Set {
            condition: Condition::Absent,
            value: Some(b"new".to_vec()),
        };
        let (value, reply) = evaluate(&update, Some(b"old"));
        assert_eq!(value.as_deref(), Some(&b"old"[..]));
        assert_eq!(
            reply,
            ClientReply::Updated {
                applied: false,
                previous: Some(b"old".to_vec()),
                current: Some(b"old".to_vec()),
            }
        );
        let (value, _) = evaluate(&update, None);
        assert_eq!(value.as_deref(), Some(&b"new"[..]));
    }

    #[test]
    fn add_overflow_and_non_integers_change_nothing() {
        let add = |delta| Update::Add { delta };
        assert_eq!(evaluate(&add(5), Some(b"-2")).0.as_deref(), Some(&b"3"[..]));
        let max = i64::MAX.to_string().into_bytes();
        assert_eq!(
            evaluate(&add(1), Some(&max)),
            (
                Some(max.clone()),
                ClientReply::Error(ClientError::NotAnInteger)
            )
        );
        assert_eq!(
            evaluate(&add(1), Some(b"abc")).1,
            ClientReply::Error(ClientError::NotAnInteger)
        );
    }
}

//! Hinted handoff: a node holding hints sends them to their owners once gossip shows
//! the owner alive, and deletes each hint once the owner acknowledged it durably.
//!
//! Every `hint_handoff_interval_ms` (only while hints exist), for each target that this
//! node's failure detector says is `Alive` and that has no batch in flight: scan up to
//! `hint_handoff_batch_max` of its hints (and about `hint_handoff_batch_bytes_max` of
//! state) and send each as `EventualMerge { hint_for: None }`. On the owner's
//! `EventualMergeAck` the hint is deleted, but only if it still holds exactly the state
//! that was sent: a hint that absorbed a newer write meanwhile stays and goes out again.
//! A batch that is not fully acknowledged within `request_timeout_ms` is forgotten and
//! retried in a later round; when a target's batch completes the next round starts at
//! once, so a backlog drains at one batch per round trip.
//!
//! A node that left the layout keeps handing its hints off (members accept hint
//! merges from former members), so a write it acknowledged as a fallback still
//! reaches the owners.
//!
//! A target that is no longer in the layout (it left, or was removed) will never take
//! its hints: each of its hints becomes a hint for every current owner of the key
//! (this node excepted: its own `e/` copy already holds the state), so the write still
//! reaches the key's replicas.
//!
//! The delete is not synced: if it is lost in a crash the hint is sent again, and the
//! owner's merge is idempotent. Fallbacks keep their own `e/` copy after handoff: it
//! holds the dots they issued (see `Siblings::update`), which must never be reissued.

use std::collections::BTreeMap;

use crate::protocol::{PeerMessage, SiblingState};
use crate::ring::NodeId;
use crate::storage::{WriteBatch, WriteOptions};

use super::super::gossip::MemberState;
use super::super::replica::ReplicaError;
use super::hints::HintQueues;
use super::stored::{hint_prefix, split_hint_key, HintRecord};
use super::{EvCtx, Eventual};

#[derive(Debug)]
struct InFlight {
    target: NodeId,
    hint_key: Vec<u8>,
    state: SiblingState,
    deadline_ms: u64,
}

#[derive(Debug)]
pub(crate) struct Handoff {
    /// Hints sent and not yet acknowledged, by `OpId::seq` of their message.
    in_flight: BTreeMap<u64, InFlight>,
    next_round_ms: u64,
}

impl Handoff {
    pub fn new(now_ms: u64) -> Self {
        Handoff {
            in_flight: BTreeMap::new(),
            next_round_ms: now_ms,
        }
    }

    /// When the next round is due; `None` while there is nothing to hand off.
    pub fn next_timeout_ms(&self, hints: &HintQueues) -> Option<u64> {
        (hints.total() > 0 || !self.in_flight.is_empty()).then_some(self.next_round_ms)
    }

    pub fn is_in_flight(&self, seq: u64) -> bool {
        self.in_flight.contains_key(&seq)
    }

    fn busy(&self, target: NodeId) -> bool {
        self.in_flight.values().any(|hint| hint.target == target)
    }
}

impl Eventual {
    /// Sends a batch of hints to every target alive and not already busy, if a round is
    /// due. Storage errors are returned for status after the other targets are served.
    pub(super) fn handoff_round(&mut self, ctx: &mut EvCtx<'_>) -> Result<(), ReplicaError> {
        if self.handoff.next_timeout_ms(&self.hints).is_none()
            || ctx.now_ms < self.handoff.next_round_ms
        {
            return Ok(());
        }
        self.handoff.next_round_ms = ctx.now_ms.saturating_add(self.settings.handoff_interval_ms);
        let now_ms = ctx.now_ms;
        self.handoff
            .in_flight
            .retain(|_, hint| hint.deadline_ms > now_ms);
        let targets: Vec<NodeId> = self.hints.by_target().keys().copied().collect();
        let mut first_error = None;
        for target in targets.iter().filter(|t| ctx.layout.node(**t).is_none()) {
            if let Err(error) = self.retarget(ctx, *target) {
                first_error.get_or_insert(error);
            }
        }
        // A node outside the layout (it left) hears no gossip, so it cannot tell who is
        // alive; it still owes its hints to the members, and sends them regardless.
        let outside = ctx.layout.node(self.me).is_none();
        for target in targets {
            let alive = outside || ctx.detector.state(target, now_ms) == MemberState::Alive;
            if !alive || self.handoff.busy(target) {
                continue;
            }
            if let Err(error) = self.send_batch(ctx, target) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Moves a batch of the hints held for `gone` (not in the layout) to the key's
    /// current owners, in one durable batch: new hints first, then the old one deleted.
    fn retarget(&mut self, ctx: &mut EvCtx<'_>, gone: NodeId) -> Result<(), ReplicaError> {
        let page = ctx
            .engine
            .scan_prefix(&hint_prefix(gone), self.settings.handoff_batch_max)?;
        let mut batch = WriteBatch::new();
        let mut added = Vec::new();
        let mut removed = 0u64;
        for (old_key, bytes) in page {
            let Some((_, key)) = split_hint_key(&old_key) else {
                continue;
            };
            let state = HintRecord::decode(&bytes)
                .map_err(ReplicaError::CorruptRecord)?
                .into_state();
            for owner in ctx.layout.preference_list(key) {
                if owner == self.me {
                    continue;
                }
                let new_key = super::stored::hint_key(owner, key);
                let merged = match ctx.engine.get(&new_key)? {
                    Some(held) => HintRecord::decode(&held)
                        .map_err(ReplicaError::CorruptRecord)?
                        .into_state()
                        .merged(&state),
                    None => {
                        added.push(owner);
                        state.clone()
                    }
                };
                let record = HintRecord::V1 { state: merged }
                    .encode()
                    .map_err(ReplicaError::Encode)?;
                batch.put(new_key, record);
            }
            batch.delete(old_key);
            removed += 1;
        }
        if batch.is_empty() {
            return Ok(());
        }
        ctx.engine.write(&batch, WriteOptions::DURABLE)?;
        for owner in added {
            self.hints.added(owner);
        }
        for _ in 0..removed {
            self.hints.removed(gone);
        }
        Ok(())
    }

    fn send_batch(&mut self, ctx: &mut EvCtx<'_>, target: NodeId) -> Result<(), ReplicaError> {
        let page = ctx
            .engine
            .scan_prefix(&hint_prefix(target), self.settings.handoff_batch_max)?;
        let mut batch_bytes = 0usize;
        let mut first_error = None;
        for (hint_key, bytes) in page {
            if batch_bytes > 0
                && batch_bytes.saturating_add(bytes.len()) > self.settings.handoff_batch_bytes_max
            {
                break;
            }
            let Some((_, key)) = split_hint_key(&hint_key) else {
                continue;
            };
            let state = match HintRecord::decode(&bytes) {
                Ok(record) => record.into_state(),
                Err(error) => {
                    // Left in place (and counted in the queue) so it stays visible;
                    // the owner still gets every other hint.
                    first_error.get_or_insert(ReplicaError::CorruptRecord(error));
                    continue;
                }
            };
            batch_bytes = batch_bytes.saturating_add(bytes.len());
            let req = self.next_op_id();
            ctx.out.send(
                target,
                PeerMessage::EventualMerge {
                    req,
                    key: key.to_vec(),
                    state: state.clone(),
                    hint_for: None,
                },
            );
            self.handoff.in_flight.insert(
                req.seq,
                InFlight {
                    target,
                    hint_key,
                    state,
                    deadline_ms: ctx.now_ms.saturating_add(self.settings.request_timeout_ms),
                },
            );
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The owner answered a handed-off hint.
    pub(super) fn on_handoff_reply(
        &mut self,
        ctx: &mut EvCtx<'_>,
        from: NodeId,
        seq: u64,
        reply: PeerMessage,
    ) -> Result<(), ReplicaError> {
        let Some(hint) = self.handoff.in_flight.remove(&seq) else {
            return Ok(());
        };
        if hint.target != from {
            ctx.counters.stale_replies += 1;
            self.handoff.in_flight.insert(seq, hint);
            return Ok(());
        }
        if !matches!(reply, PeerMessage::EventualMergeAck { .. }) {
            // Refused (the owner's merged state would be too large): kept, retried
            // in a later round.
            return Ok(());
        }
        if !self.handoff.busy(hint.target) {
            // The batch is done: continue with the next one at once.
            self.handoff.next_round_ms = self.handoff.next_round_ms.min(ctx.now_ms);
        }
        let still_same = match ctx.engine.get(&hint.hint_key)? {
            Some(bytes) => {
                HintRecord::decode(&bytes).is_ok_and(|record| record.into_state() == hint.state)
            }
            None => false,
        };
        if still_same {
            let mut batch = WriteBatch::new();
            batch.delete(hint.hint_key);
            ctx.engine.write(&batch, WriteOptions::BUFFERED)?;
            self.hints.removed(hint.target);
            ctx.counters.hints_delivered += 1;
        }
        Ok(())
    }
}

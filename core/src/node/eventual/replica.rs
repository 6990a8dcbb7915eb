//! The replica side of eventual mode: answer state queries, apply a put at its dot
//! issuer, merge states, keep hints.
//!
//! Invariants:
//! - An ack (`EventualUpdateAck`, `EventualMergeAck`) is sent only once the engine
//!   durably holds a state that includes what was asked (every `e/` and `h/` write here
//!   is `DURABLE`; an unchanged state was already durable when it was stored).
//! - A fallback's copy and its hint are written in one engine batch: either both are
//!   durable or neither, so an acknowledged write always has a hint for its owner.
//! - Every stored state encodes to at most `state_size_bytes_max`, so it fits the
//!   messages that carry it (read answers, replication, handoff). A write that would
//!   exceed it is refused and writes nothing.
//! - Only `e/`, `q/` and `h/` keys are touched: linearizable registers (`d/`) never
//!   are. Every `e/` write puts the key's `q/` index entry (anti-entropy's version of
//!   the state) in the same batch, and reports the change for the Merkle trees.

use crate::protocol::{EventualRefusal, OpId, PeerMessage, SiblingState};
use crate::ring::NodeId;
use crate::storage::{Engine, WriteBatch, WriteOptions};
use crate::versioning::VersionVector;

use super::super::ae::index;
use super::super::ae::EventualVersion;
use super::super::replica::ReplicaError;
use super::super::status::NodeCounters;
use super::hints::HintQueues;
use super::stored::{eventual_key, hint_key, EventualRecord, HintRecord};

/// What a replica handler needs besides the message.
pub(crate) struct ReplicaEnv<'a> {
    pub engine: &'a dyn Engine,
    pub me: NodeId,
    pub hints: &'a mut HintQueues,
    pub counters: &'a mut NodeCounters,
    pub state_size_bytes_max: usize,
    /// Copies changed by this handler, for the anti-entropy trees (drained by the node).
    pub changes: &'a mut Vec<EventualChange>,
}

/// A key's stored state changed from `old` (`None`: no record) to `new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventualChange {
    pub key: Vec<u8>,
    pub old: Option<EventualVersion>,
    pub new: EventualVersion,
}

/// The sibling state this replica holds for `key` (empty if none).
pub(crate) fn read_state(engine: &dyn Engine, key: &[u8]) -> Result<SiblingState, ReplicaError> {
    match engine.get(&eventual_key(key))? {
        None => Ok(SiblingState::new()),
        Some(bytes) => Ok(EventualRecord::decode(&bytes)
            .map_err(ReplicaError::CorruptRecord)?
            .into_state()),
    }
}

/// The hint held for `target` about `key`, if any.
pub(crate) fn read_hint(
    engine: &dyn Engine,
    target: NodeId,
    key: &[u8],
) -> Result<Option<SiblingState>, ReplicaError> {
    match engine.get(&hint_key(target, key))? {
        None => Ok(None),
        Some(bytes) => Ok(Some(
            HintRecord::decode(&bytes)
                .map_err(ReplicaError::CorruptRecord)?
                .into_state(),
        )),
    }
}

pub(crate) fn on_read(
    engine: &dyn Engine,
    req: OpId,
    key: &[u8],
) -> Result<PeerMessage, ReplicaError> {
    Ok(PeerMessage::EventualReadAck {
        req,
        state: read_state(engine, key)?,
    })
}

/// Applies a client write at this node, its dot issuer: `update` on this node's own
/// durable copy (the dot counter continues from what this copy has seen, which is what
/// keeps dots unique: see `Siblings::update`). Returns the ack carrying the new state,
/// or the refusal.
pub(crate) fn on_update(
    env: &mut ReplicaEnv<'_>,
    req: OpId,
    key: &[u8],
    context: &VersionVector,
    value: Option<Vec<u8>>,
    hint_for: Option<NodeId>,
) -> Result<PeerMessage, ReplicaError> {
    let current = read_state(env.engine, key)?;
    let mut next = current.clone();
    if next.update(context, env.me, value).is_err() {
        return Ok(PeerMessage::EventualRefused {
            req,
            reason: EventualRefusal::CounterExhausted,
        });
    }
    Ok(match store(env, key, &current, &next, hint_for)? {
        Ok(()) => PeerMessage::EventualUpdateAck { req, state: next },
        Err(reason) => PeerMessage::EventualRefused { req, reason },
    })
}

/// Merges `incoming` into this node's copy (and its hint for `hint_for`).
pub(crate) fn on_merge(
    env: &mut ReplicaEnv<'_>,
    req: OpId,
    key: &[u8],
    incoming: &SiblingState,
    hint_for: Option<NodeId>,
) -> Result<PeerMessage, ReplicaError> {
    let current = read_state(env.engine, key)?;
    let next = current.merged(incoming);
    Ok(match store(env, key, &current, &next, hint_for)? {
        Ok(()) => PeerMessage::EventualMergeAck { req },
        Err(reason) => PeerMessage::EventualRefused { req, reason },
    })
}

/// Durably stores `next` (if it differs from `current`) and, for a fallback, merges it
/// into the hint for `hint_for`, in one batch. Nothing is written on a refusal.
fn store(
    env: &mut ReplicaEnv<'_>,
    key: &[u8],
    current: &SiblingState,
    next: &SiblingState,
    hint_for: Option<NodeId>,
) -> Result<Result<(), EventualRefusal>, ReplicaError> {
    let mut batch = WriteBatch::new();
    let copy_changed = next != current;
    let mut change = None;
    if copy_changed {
        match put_copy(env.engine, &mut batch, key, next, env.state_size_bytes_max)? {
            Ok(changed) => change = Some(changed),
            Err(refusal) => return Ok(Err(refusal)),
        }
    }
    let mut new_hint_for = None;
    if let Some(owner) = hint_for {
        let existing = read_hint(env.engine, owner, key)?;
        // The hint carries this node's whole state for the key: at least what the owner
        // missed, and merging more into the owner is harmless.
        let hint = match &existing {
            Some(held) => held.merged(next),
            None => next.clone(),
        };
        if existing.as_ref() != Some(&hint) {
            if existing.is_none() {
                if !env.hints.has_room() {
                    env.counters.hints_refused += 1;
                    return Ok(Err(EventualRefusal::HintsFull {
                        hints_queued_max: env.hints.max(),
                    }));
                }
                new_hint_for = Some(owner);
            }
            let record = HintRecord::V1 { state: hint }
                .encode()
                .map_err(ReplicaError::Encode)?;
            if let Err(refusal) = within(record.len(), env.state_size_bytes_max) {
                return Ok(Err(refusal));
            }
            batch.put(hint_key(owner, key), record);
        }
    }
    if batch.is_empty() {
        return Ok(Ok(()));
    }
    env.engine.write(&batch, WriteOptions::DURABLE)?;
    if let Some(change) = change {
        env.counters.eventual_writes_applied += 1;
        env.changes.push(change);
    }
    if let Some(owner) = new_hint_for {
        env.hints.added(owner);
        env.counters.hints_queued += 1;
    }
    Ok(Ok(()))
}

/// Adds `next` as `key`'s stored copy to `batch`, with its `q/` entry; the change it
/// makes (the old version is read from `q/`, the truth the trees were built from).
fn put_copy(
    engine: &dyn Engine,
    batch: &mut WriteBatch,
    key: &[u8],
    next: &SiblingState,
    state_size_bytes_max: usize,
) -> Result<Result<EventualChange, EventualRefusal>, ReplicaError> {
    let record = EventualRecord::Siblings(next.clone())
        .encode()
        .map_err(ReplicaError::Encode)?;
    if let Err(refusal) = within(record.len(), state_size_bytes_max) {
        return Ok(Err(refusal));
    }
    let old = index::eventual_version(engine, key)?;
    let new = EventualVersion::of_record(&record);
    batch.put(eventual_key(key), record);
    index::put_eventual_in_batch(batch, key, &new);
    Ok(Ok(EventualChange {
        key: key.to_vec(),
        old,
        new,
    }))
}

/// Merges a state pushed by anti-entropy into this replica's copy, durably (no hint:
/// the sender is a co-replica). The change, if the copy grew; a refusal (the merged
/// state would exceed the limit) writes nothing and is reported as `Err`.
pub(crate) fn merge_pushed(
    engine: &dyn Engine,
    key: &[u8],
    incoming: &SiblingState,
    state_size_bytes_max: usize,
) -> Result<Result<Option<EventualChange>, EventualRefusal>, ReplicaError> {
    let current = read_state(engine, key)?;
    let next = current.merged(incoming);
    if next == current {
        return Ok(Ok(None));
    }
    let mut batch = WriteBatch::new();
    let change = match put_copy(engine, &mut batch, key, &next, state_size_bytes_max)? {
        Ok(change) => change,
        Err(refusal) => return Ok(Err(refusal)),
    };
    engine.write(&batch, WriteOptions::DURABLE)?;
    Ok(Ok(Some(change)))
}

fn within(size_bytes: usize, limit_bytes: usize) -> Result<(), EventualRefusal> {
    if size_bytes > limit_bytes {
        return Err(EventualRefusal::TooLarge {
            size_bytes: size_bytes as u64,
            limit_bytes: limit_bytes as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::storage::blockstore::MemoryStore;
    use crate::storage::lsm::{LsmEngine, LsmOptions};

    fn engine() -> LsmEngine {
        LsmEngine::open(Arc::new(MemoryStore::new()), LsmOptions::tiny()).expect("open")
    }

    fn values(state: &SiblingState) -> Vec<Option<Vec<u8>>> {
        state.values().cloned().collect()
    }

    #[test]
    fn updates_number_dots_from_the_own_copy_and_merges_are_idempotent() {
        let engine = engine();
        let mut hints = HintQueues::default();
        let mut counters = NodeCounters::default();
        let mut changes = Vec::new();
        let mut env = ReplicaEnv {
            engine: &engine,
            me: NodeId(1),
            hints: &mut hints,
            counters: &mut counters,
            state_size_bytes_max: 1 << 20,
            changes: &mut changes,
        };
        let req = OpId::default();
        let blind = VersionVector::new();
        let PeerMessage::EventualUpdateAck { state: first, .. } =
            on_update(&mut env, req, b"k", &blind, Some(b"a".to_vec()), None).expect("update")
        else {
            panic!("ack expected");
        };
        let PeerMessage::EventualUpdateAck { state: second, .. } =
            on_update(&mut env, req, b"k", &blind, Some(b"b".to_vec()), None).expect("update")
        else {
            panic!("ack expected");
        };
        // Two blind writes: siblings with distinct dots of this node.
        assert_eq!(values(&second).len(), 2);
        assert_eq!(second.context().get(NodeId(1)), 2);
        assert!(second.merged(&first) == second);
        // Merging an older state changes nothing and writes nothing.
        let applied = env.counters.eventual_writes_applied;
        assert_eq!(
            on_merge(&mut env, req, b"k", &first, None).expect("merge"),
            PeerMessage::EventualMergeAck { req }
        );
        assert_eq!(env.counters.eventual_writes_applied, applied);
        // A write with the context supersedes both.
        let context = second.context();
        on_update(&mut env, req, b"k", &context, None, None).expect("delete");
        assert_eq!(
            values(&read_state(&engine, b"k").expect("read")),
            vec![None]
        );
    }

    #[test]
    fn fallbacks_keep_hints_in_the_same_batch_and_refuse_when_full() {
        let engine = engine();
        let mut hints = HintQueues::default(); // max 0: no room
        let mut counters = NodeCounters::default();
        let mut state = SiblingState::new();
        state
            .update(&VersionVector::new(), NodeId(2), Some(b"v".to_vec()))
            .expect("update");
        let req = OpId::default();
        let mut changes = Vec::new();
        let mut env = ReplicaEnv {
            engine: &engine,
            me: NodeId(4),
            hints: &mut hints,
            counters: &mut counters,
            state_size_bytes_max: 1 << 20,
            changes: &mut changes,
        };
        assert_eq!(
            on_merge(&mut env, req, b"k", &state, Some(NodeId(3))).expect("merge"),
            PeerMessage::EventualRefused {
                req,
                reason: EventualRefusal::HintsFull {
                    hints_queued_max: 0
                }
            }
        );
        assert_eq!(
            read_state(&engine, b"k").expect("read"),
            SiblingState::new()
        );
        assert_eq!(env.counters.hints_refused, 1);

        let mut hints = HintQueues::load(&engine, 1).expect("load");
        let mut changes = Vec::new();
        let mut env = ReplicaEnv {
            engine: &engine,
            me: NodeId(4),
            hints: &mut hints,
            counters: &mut counters,
            state_size_bytes_max: 1 << 20,
            changes: &mut changes,
        };
        assert_eq!(
            on_merge(&mut env, req, b"k", &state, Some(NodeId(3))).expect("merge"),
            PeerMessage::EventualMergeAck { req }
        );
        // Merging into the existing hint needs no room.
        assert!(matches!(
            on_update(
                &mut env,
                req,
                b"k",
                &VersionVector::new(),
                Some(b"w".to_vec()),
                Some(NodeId(3))
            )
            .expect("update"),
            PeerMessage::EventualUpdateAck { .. }
        ));
        let hint = read_hint(&engine, NodeId(3), b"k")
            .expect("read")
            .expect("hint");
        assert_eq!(hint, read_state(&engine, b"k").expect("read"));
        assert_eq!(values(&hint).len(), 2);
        assert_eq!(env.counters.hints_queued, 1);
        assert_eq!(hints.total(), 1);
    }

    #[test]
    fn oversized_states_and_exhausted_counters_are_refused_without_writing() {
        let engine = engine();
        let mut hints = HintQueues::default();
        let mut counters = NodeCounters::default();
        let mut changes = Vec::new();
        let mut env = ReplicaEnv {
            engine: &engine,
            me: NodeId(1),
            hints: &mut hints,
            counters: &mut counters,
            state_size_bytes_max: 64,
            changes: &mut changes,
        };
        let req = OpId::default();
        let reply = on_update(
            &mut env,
            req,
            b"k",
            &VersionVector::new(),
            Some(vec![7; 100]),
            None,
        )
        .expect("update");
        assert!(matches!(
            reply,
            PeerMessage::EventualRefused {
                reason: EventualRefusal::TooLarge {
                    limit_bytes: 64,
                    ..
                },
                ..
            }
        ));
        let forged: VersionVector = [(NodeId(1), u64::MAX)].into_iter().collect();
        assert_eq!(
            on_update(&mut env, req, b"k", &forged, None, None).expect("update"),
            PeerMessage::EventualRefused {
                req,
                reason: EventualRefusal::CounterExhausted
            }
        );
        assert_eq!(engine.get(&eventual_key(b"k")).expect("get"), None);
    }
}

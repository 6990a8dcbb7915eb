//! One in-flight coordinator operation and its quorum bookkeeping (no IO here).
//!
//! ABD, per operation:
//! - `Query` (phase 1): `ReadTag` (put/delete) or `Read` (get) to every replica; done
//!   at `quorum` distinct answers.
//! - `Propagate` (phase 2): `Write { tag, value }` until `quorum` distinct replicas hold
//!   a tag `>= tag`. For a put that is `quorum` acks; for a get's write-back, replicas
//!   that already answered phase 1 with `tag` count from the start (their stored tag
//!   never decreases), so only stale or silent replicas are written to.
//!
//! Answers count once per replica (duplicates are ignored), and only from the key's
//! replicas: quorums of the same preference list always intersect. While a layout
//! change is in progress an operation has two replica sets (old and new layout) and
//! needs a majority of each (`ring/history.rs`).

use std::collections::{BTreeMap, BTreeSet};

use crate::protocol::{OpId, PeerMessage, RequestId};
use crate::ring::NodeId;
use crate::versioning::Tag;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OpKind {
    Get,
    /// A put (`Some`) or a delete (`None`).
    Put {
        value: Option<Vec<u8>>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    Query {
        answered: BTreeMap<NodeId, Tag>,
        /// Largest tag answered so far and (for gets) its value.
        best_tag: Tag,
        best_value: Option<Vec<u8>>,
    },
    Propagate {
        tag: Tag,
        value: Option<Vec<u8>>,
        acked: BTreeSet<NodeId>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub id: OpId,
    pub client: RequestId,
    pub key: Vec<u8>,
    pub kind: OpKind,
    /// The key's replica sets (one, or two during a layout change): a phase completes
    /// with a majority of every set.
    pub sets: Vec<Vec<NodeId>>,
    /// Every node of `sets`, once: the only nodes whose answers count.
    pub replicas: Vec<NodeId>,
    /// The layout epoch the operation's messages carry.
    pub epoch: u64,
    /// Phase-1 restarts after a `Stale` answer or refusals.
    pub restarts: u32,
    /// Replicas that refused the current phase-2 write (a conditional write's promise).
    pub refused: BTreeSet<NodeId>,
    /// Some refusal came from a replica holding a larger tag: it may have stored an
    /// earlier copy of the write (acknowledgement lost) before that tag replaced it.
    pub refused_maybe_held: bool,
    pub phase: Phase,
    pub phase_deadline_ms: u64,
    pub next_resend_ms: u64,
}

impl Op {
    pub fn new(
        id: OpId,
        client: RequestId,
        key: Vec<u8>,
        kind: OpKind,
        sets: Vec<Vec<NodeId>>,
        epoch: u64,
    ) -> Self {
        Op {
            id,
            client,
            key,
            kind,
            replicas: union(&sets),
            sets,
            epoch,
            restarts: 0,
            refused: BTreeSet::new(),
            refused_maybe_held: false,
            phase: Phase::Query {
                answered: BTreeMap::new(),
                best_tag: Tag::ZERO,
                best_value: None,
            },
            phase_deadline_ms: 0,
            next_resend_ms: 0,
        }
    }

    pub fn wake_ms(&self) -> u64 {
        self.phase_deadline_ms.min(self.next_resend_ms)
    }

    /// Replicas that have not answered the current phase.
    pub fn pending(&self) -> Vec<NodeId> {
        self.replicas
            .iter()
            .copied()
            .filter(|id| match &self.phase {
                Phase::Query { answered, .. } => !answered.contains_key(id),
                Phase::Propagate { acked, .. } => !acked.contains(id) && !self.refused.contains(id),
            })
            .collect()
    }

    /// The message the current phase sends to each replica.
    pub fn phase_message(&self) -> PeerMessage {
        let (req, key, epoch) = (self.id, self.key.clone(), self.epoch);
        match (&self.phase, &self.kind) {
            (Phase::Query { .. }, OpKind::Get) => PeerMessage::Read { req, epoch, key },
            (Phase::Query { .. }, OpKind::Put { .. }) => PeerMessage::ReadTag { req, epoch, key },
            (Phase::Propagate { tag, value, .. }, _) => PeerMessage::Write {
                req,
                epoch,
                key,
                tag: *tag,
                value: value.clone(),
            },
        }
    }

    /// Records a phase-1 answer (`value` is `None` for `ReadTagAck`). Returns whether
    /// it counted: from a replica of the key, not seen before, in the query phase, and
    /// of the kind this operation asked for.
    pub fn record_query(
        &mut self,
        from: NodeId,
        tag: Tag,
        value: Option<Vec<u8>>,
        with_value: bool,
    ) -> bool {
        if !self.replicas.contains(&from) || with_value != (self.kind == OpKind::Get) {
            return false;
        }
        let Phase::Query {
            answered,
            best_tag,
            best_value,
        } = &mut self.phase
        else {
            return false;
        };
        if answered.insert(from, tag).is_some() {
            return false;
        }
        if tag > *best_tag {
            *best_tag = tag;
            *best_value = value;
        }
        true
    }

    /// Records a `WriteAck`; same rules as [`Op::record_query`].
    pub fn record_ack(&mut self, from: NodeId) -> bool {
        match &mut self.phase {
            Phase::Propagate { acked, .. }
                if self.replicas.contains(&from) && !self.refused.contains(&from) =>
            {
                acked.insert(from)
            }
            _ => false,
        }
    }

    /// Records a phase-2 `Refused` (a replica under a conditional write's promise)
    /// from a replica whose stored tag is `stored`.
    pub fn record_refusal(&mut self, from: NodeId, stored: Tag) -> bool {
        match &self.phase {
            Phase::Propagate { acked, tag, .. }
                if self.replicas.contains(&from) && !acked.contains(&from) =>
            {
                self.refused_maybe_held |= stored > *tag;
                self.refused.insert(from)
            }
            _ => false,
        }
    }

    /// The refusals leave some replica set without a possible majority of acks.
    pub fn refusals_block(&self) -> bool {
        !self.is_quorum(|id| !self.refused.contains(id))
    }

    pub fn has_quorum(&self) -> bool {
        match &self.phase {
            Phase::Query { answered, .. } => self.is_quorum(|id| answered.contains_key(id)),
            Phase::Propagate { acked, .. } => self.is_quorum(|id| acked.contains(id)),
        }
    }

    /// Whether the nodes `holds` accepts include a majority of every replica set.
    pub fn is_quorum(&self, holds: impl Fn(&NodeId) -> bool) -> bool {
        self.sets
            .iter()
            .all(|set| set.iter().filter(|id| holds(id)).count() >= quorum_of(set.len()))
    }

    /// "a of n replicas answered, q needed" for error messages, per set.
    pub fn describe_progress(&self) -> String {
        describe_sets(&self.sets, |id| match &self.phase {
            Phase::Query { answered, .. } => answered.contains_key(id),
            Phase::Propagate { acked, .. } => acked.contains(id),
        })
    }

    /// Starts phase 1 again on new replica sets (a replica knew a newer layout).
    pub fn restart(&mut self, sets: Vec<Vec<NodeId>>, epoch: u64) {
        self.replicas = union(&sets);
        self.sets = sets;
        self.epoch = epoch;
        self.restarts += 1;
        self.refused.clear();
        self.refused_maybe_held = false;
        self.phase = Phase::Query {
            answered: BTreeMap::new(),
            best_tag: Tag::ZERO,
            best_value: None,
        };
    }
}

/// Every node of `sets`, once, in first-seen order.
fn union(sets: &[Vec<NodeId>]) -> Vec<NodeId> {
    let mut all: Vec<NodeId> = Vec::new();
    for id in sets.iter().flatten() {
        if !all.contains(id) {
            all.push(*id);
        }
    }
    all
}

/// Majority of `replicas`: any two such sets of one preference list intersect.
pub(crate) fn quorum_of(replicas: usize) -> usize {
    replicas / 2 + 1
}

/// "a of n replicas, q needed" per replica set, for error messages.
pub(crate) fn describe_sets(sets: &[Vec<NodeId>], answered: impl Fn(&NodeId) -> bool) -> String {
    let parts: Vec<String> = sets
        .iter()
        .map(|set| {
            format!(
                "{} of {} replicas, {} needed",
                set.iter().filter(|id| answered(id)).count(),
                set.len(),
                quorum_of(set.len())
            )
        })
        .collect();
    parts.join("; and of the new layout's: ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(counter: u64) -> Tag {
        Tag {
            counter,
            node: NodeId(1),
        }
    }

    fn op(kind: OpKind) -> Op {
        Op::new(
            OpId::default(),
            RequestId(7),
            b"k".to_vec(),
            kind,
            vec![vec![NodeId(1), NodeId(2), NodeId(3)]],
            1,
        )
    }

    #[test]
    fn answers_count_once_per_replica_of_the_key() {
        let mut get = op(OpKind::Get);
        assert!(get.record_query(NodeId(2), tag(1), Some(b"a".to_vec()), true));
        assert!(!get.record_query(NodeId(2), tag(5), Some(b"b".to_vec()), true)); // dup
        assert!(!get.record_query(NodeId(9), tag(5), None, true)); // not a replica
        assert!(!get.record_query(NodeId(3), tag(5), None, false)); // wrong kind
        assert!(!get.has_quorum());
        assert!(get.record_query(NodeId(3), tag(4), Some(b"c".to_vec()), true));
        assert!(get.has_quorum());
        assert_eq!(get.pending(), vec![NodeId(1)]);
        let Phase::Query {
            best_tag,
            best_value,
            ..
        } = &get.phase
        else {
            panic!("query phase");
        };
        assert_eq!(
            (*best_tag, best_value.as_deref()),
            (tag(4), Some(&b"c"[..]))
        );
        assert!(!get.record_ack(NodeId(1))); // not in phase 2
    }

    #[test]
    fn phase_messages_follow_kind_and_phase() {
        let mut put = op(OpKind::Put {
            value: Some(b"v".to_vec()),
        });
        assert!(matches!(put.phase_message(), PeerMessage::ReadTag { .. }));
        put.phase = Phase::Propagate {
            tag: tag(3),
            value: Some(b"v".to_vec()),
            acked: BTreeSet::new(),
        };
        assert!(matches!(put.phase_message(), PeerMessage::Write { tag: t, .. } if t == tag(3)));
        assert!(put.record_ack(NodeId(1)));
        assert!(!put.record_ack(NodeId(1)));
        assert_eq!(quorum_of(1), 1);
        assert_eq!(quorum_of(2), 2);
        assert_eq!(quorum_of(5), 3);
    }
}

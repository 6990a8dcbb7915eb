//! The versioned state of one key in `eventual` mode: concurrent values ("siblings"),
//! each tagged with the dot of the write that made it, plus the causal context.
//!
//! This is the dotted-version-vector *set* semantics of Riak 2.0's `dvvset` (Almeida,
//! Baquero, Gonçalves, Preguiça, Fonte: "Scalable and Accurate Causality Tracking for
//! Eventually Consistent Stores", 2014), in the explicit form of a "dotted causal
//! container": a map `dot → value` plus one version vector for everything seen, instead
//! of `dvvset`'s positional per-node value lists. Same behaviour, simpler merge; one
//! dot per sibling (16 bytes) more than `dvvset`, which is noise next to the values.
//!
//! Invariants, kept by every operation (and restored on decode):
//! - every live dot is in `seen` (a replica has seen what it stores);
//! - `seen` is downward closed per node: `(n, k)` seen implies `(n, j)` seen for `j < k`
//!   — true because a coordinator numbers a key's writes `1, 2, ...` from its own
//!   state for that key, and states travel whole (update and merge, never a lone dot);
//! - a dot in `seen` but not live has been superseded, so it must never come back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};

use super::dot::Dot;
use super::error::VersionError;
use super::vv::VersionVector;
use crate::ring::NodeId;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "SiblingsWire<V>")]
#[serde(bound(deserialize = "V: Deserialize<'de>"))]
pub struct Siblings<V> {
    /// Live values by the dot of their write. Pairwise concurrent.
    live: BTreeMap<Dot, V>,
    /// Every dot this state has seen, live or superseded.
    seen: VersionVector,
}

impl<V> Default for Siblings<V> {
    fn default() -> Self {
        Siblings {
            live: BTreeMap::new(),
            seen: VersionVector::new(),
        }
    }
}

impl<V> Siblings<V> {
    /// State of a key never written.
    pub fn new() -> Self {
        Self::default()
    }

    /// The causal context to hand a client with the values of a read. Writing back with
    /// it supersedes exactly the values the client was shown (and anything older).
    pub fn context(&self) -> VersionVector {
        self.seen.clone()
    }

    /// Applies a client write at its coordinator and returns the write's dot.
    ///
    /// Drops every live value whose dot is in `context` (the client saw it, so this
    /// write supersedes it), keeps the others as concurrent siblings, and records
    /// `value` under a fresh dot of `coordinator`. An empty context is a blind write:
    /// concurrent with everything stored. Deletes are writes of a tombstone value.
    ///
    /// Dot uniqueness (the correctness of everything here) needs `coordinator` to call
    /// this on its own durable state for the key: the new counter is one past the
    /// highest this state (or the context) has seen from `coordinator`. A node that
    /// lost its data, or a fallback that dropped a handed-off key, must not coordinate
    /// under the same id: it would reissue dots and other replicas would discard the new
    /// writes as already seen.
    pub fn update(
        &mut self,
        context: &VersionVector,
        coordinator: NodeId,
        value: V,
    ) -> Result<Dot, VersionError> {
        let highest = self.seen.get(coordinator).max(context.get(coordinator));
        let counter = highest
            .checked_add(1)
            .ok_or(VersionError::CounterExhausted(coordinator))?;
        let dot = Dot::new(coordinator, counter);
        self.live.retain(|live_dot, _| !context.contains(*live_dot));
        // The client's context may hold dots this replica has not received yet: they are
        // in the new write's past, so they are superseded here too.
        self.seen.merge(context);
        self.seen.observe(dot);
        self.live.insert(dot, value);
        Ok(dot)
    }

    /// The live values, in dot order. More than one means concurrent writes: the client
    /// resolves them and writes back with [`Siblings::context`].
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.live.values()
    }

    /// The live values with their dots.
    pub fn iter(&self) -> impl Iterator<Item = (Dot, &V)> {
        self.live.iter().map(|(dot, value)| (*dot, value))
    }

    pub fn into_values(self) -> impl Iterator<Item = V> {
        self.live.into_values()
    }

    /// Number of siblings.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}

impl<V: Clone + Ord> Siblings<V> {
    /// Joins another replica's state into this one (replication, read repair,
    /// anti-entropy, hinted handoff). Commutative, associative and idempotent, so
    /// replicas converge whatever order states arrive in, however often.
    ///
    /// A value survives if both sides hold it, or if the side lacking it has never seen
    /// its dot (it was written after that side's last sync). A value one side holds and
    /// the other has seen but dropped was superseded, and is dropped.
    ///
    /// One dot with two different values cannot happen while dots are unique; if it
    /// does (see [`Siblings::update`]), the greater value wins on both sides, so replicas
    /// still converge.
    pub fn merge(&mut self, other: &Siblings<V>) {
        let seen_here = &self.seen;
        self.live
            .retain(|dot, _| other.live.contains_key(dot) || !other.seen.contains(*dot));
        for (dot, theirs) in &other.live {
            match self.live.get_mut(dot) {
                Some(ours) if *theirs > *ours => *ours = theirs.clone(),
                Some(_) => {}
                None if !seen_here.contains(*dot) => {
                    self.live.insert(*dot, theirs.clone());
                }
                None => {}
            }
        }
        self.seen.merge(&other.seen);
    }

    /// `self` joined with `other`, leaving both unchanged.
    pub fn merged(&self, other: &Siblings<V>) -> Siblings<V> {
        let mut joined = self.clone();
        joined.merge(other);
        joined
    }
}

impl<V: Serialize> Serialize for Siblings<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SiblingsWireRef {
            seen: &self.seen,
            live: LiveAsSeq(&self.live),
        }
        .serialize(serializer)
    }
}

/// Wire form: `seen`, then the siblings as a sequence of `(dot, value)` pairs (a
/// sequence, not a map, so encodings without struct map keys work too).
#[derive(Deserialize)]
struct SiblingsWire<V> {
    seen: VersionVector,
    live: Vec<(Dot, V)>,
}

#[derive(Serialize)]
struct SiblingsWireRef<'a, V: Serialize> {
    seen: &'a VersionVector,
    live: LiveAsSeq<'a, V>,
}

struct LiveAsSeq<'a, V>(&'a BTreeMap<Dot, V>);

impl<V: Serialize> Serialize for LiveAsSeq<'_, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

impl<V> From<SiblingsWire<V>> for Siblings<V> {
    /// Restores the invariants on untrusted input: live dots are added to `seen`; of a
    /// repeated dot the last value is kept.
    fn from(wire: SiblingsWire<V>) -> Self {
        let mut seen = wire.seen;
        let mut live = BTreeMap::new();
        for (dot, value) in wire.live {
            seen.observe(dot);
            live.insert(dot, value);
        }
        // Counter 0 is not a dot: no update produces it, and `seen` cannot hold it.
        live.retain(|dot, _| dot.counter > 0);
        Siblings { live, seen }
    }
}

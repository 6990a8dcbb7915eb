//! The replica side of ABD: answer tag/value queries and apply writes by tag.
//!
//! Stateless between messages (everything is in the engine), so a message may be
//! duplicated, reordered or replayed late: `Write` applies only a strictly larger tag,
//! which makes it idempotent, and a stale `Write` can never move a register backwards.
//! Invariant: a `WriteAck` is produced only after the engine durably holds a tag at
//! least as large as the write's.
//!
//! [`store`] is the one write path for registers: `Write` (puts, deletes, read
//! write-backs), conditional writes' `Accept`, anti-entropy pushes and range streaming
//! all go through it, and it writes the key's position-index entry (`ae/index.rs`) in
//! the same batch as the record.
//!
//! Conditional writes (`coordinator/update.rs`) add a durable per-key promise: after
//! `Prepare(b)` no store below `b` lands, except range streaming to a new owner
//! ([`Promises::Keep`], argued in ARCHITECTURE.md "Conditional writes"). A `Write`
//! below the promise is answered [`PeerMessage::Refused`], never acknowledged.

use thiserror::Error;

use crate::protocol::antientropy::EntryVersion;
use crate::protocol::{OpId, PeerMessage, ScanEntry};
use crate::storage::{Engine, StorageError, WriteBatch, WriteOptions};
use crate::versioning::Tag;

use super::ae::{index, RegisterVersion};
use super::coordinator::SCAN_COUNT_MAX;
use super::stored::{data_key, Stored};

#[derive(Debug, Error)]
pub(crate) enum ReplicaError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("stored record for a key is unreadable: {0}")]
    CorruptRecord(postcard::Error),
    #[error("encoding a record failed: {0}")]
    Encode(postcard::Error),
    #[error("position index: {0}")]
    Index(String),
}

/// A replica's whole state for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Register {
    /// `Tag::ZERO` if never written.
    pub tag: Tag,
    pub value: Option<Vec<u8>>,
    /// The largest conditional-write ballot promised; `<= tag` means none is in force.
    pub promise: Tag,
}

impl Register {
    /// What a new store must exceed to land: the tag, and the promise if higher.
    pub fn fence(&self) -> Tag {
        self.tag.max(self.promise)
    }
}

/// The state of `key`: tag `Tag::ZERO`, no value, no promise if never written.
pub(crate) fn read_state(engine: &dyn Engine, key: &[u8]) -> Result<Register, ReplicaError> {
    match engine.get(&data_key(key))? {
        None => Ok(Register {
            tag: Tag::ZERO,
            value: None,
            promise: Tag::ZERO,
        }),
        Some(bytes) => match Stored::decode(&bytes).map_err(ReplicaError::CorruptRecord)? {
            Stored::Register { tag, value } => Ok(Register {
                tag,
                value,
                promise: Tag::ZERO,
            }),
            Stored::Promised {
                tag,
                value,
                promise,
            } => Ok(Register {
                tag,
                value,
                promise,
            }),
        },
    }
}

/// The register of `key`: `(Tag::ZERO, None)` if never written.
pub(crate) fn read_register(
    engine: &dyn Engine,
    key: &[u8],
) -> Result<(Tag, Option<Vec<u8>>), ReplicaError> {
    let state = read_state(engine, key)?;
    Ok((state.tag, state.value))
}

/// A put's phase 1. The answer is the register's fence (its tag, or its promise if
/// higher): the put's tag must exceed both, or its `Write` would be refused here.
pub(crate) fn on_read_tag(
    engine: &dyn Engine,
    req: OpId,
    key: &[u8],
) -> Result<PeerMessage, ReplicaError> {
    let tag = read_state(engine, key)?.fence();
    Ok(PeerMessage::ReadTagAck { req, tag })
}

/// Conditional write, phase 1: promises `ballot` (durably, before answering) iff it
/// is above the stored tag and not below the promise; the same ballot again (a resend)
/// is promised again. Otherwise refused with the fence a retry must exceed.
pub(crate) fn on_prepare(
    engine: &dyn Engine,
    req: OpId,
    key: &[u8],
    ballot: Tag,
) -> Result<PeerMessage, ReplicaError> {
    let state = read_state(engine, key)?;
    if ballot <= state.tag || ballot < state.promise {
        return Ok(PeerMessage::Refused {
            req,
            above: state.fence(),
            tag: state.tag,
        });
    }
    if ballot > state.promise {
        write_record(engine, key, state.tag, state.value.clone(), ballot)?;
    }
    Ok(PeerMessage::Promise {
        req,
        tag: state.tag,
        value: state.value,
    })
}

/// Conditional write, phase 2: stored iff `ballot` is above the stored tag and not
/// below the promise; acknowledged if stored or already held exactly. A larger stored
/// tag is a refusal, unlike `Write`: that version may come from a later round that
/// read a value older than this accept, so acknowledging would let two rounds both
/// succeed on the same input (a lost increment).
pub(crate) fn on_accept(
    engine: &dyn Engine,
    req: OpId,
    key: &[u8],
    ballot: Tag,
    value: Option<Vec<u8>>,
) -> Result<(PeerMessage, Option<RegisterChange>), ReplicaError> {
    let state = read_state(engine, key)?;
    if state.tag == ballot {
        // Held already (a read wrote it back): the fence must hold here too.
        if state.promise < ballot {
            write_record(engine, key, state.tag, state.value, ballot)?;
        }
        return Ok((PeerMessage::WriteAck { req }, None));
    }
    if ballot < state.tag || ballot < state.promise {
        let refused = PeerMessage::Refused {
            req,
            above: state.fence(),
            tag: state.tag,
        };
        return Ok((refused, None));
    }
    let change = write_register(engine, key, &state, ballot, value, ballot)?;
    Ok((PeerMessage::WriteAck { req }, Some(change)))
}

pub(crate) fn on_read(
    engine: &dyn Engine,
    req: OpId,
    key: &[u8],
) -> Result<PeerMessage, ReplicaError> {
    let (tag, value) = read_register(engine, key)?;
    Ok(PeerMessage::ReadAck { req, tag, value })
}

/// A SCAN page: this replica's registers at ring positions `from ..= to` (`from <= to`,
/// checked by the caller), at most `limit` but never splitting a position
/// (`index::scan_positions`).
pub(crate) fn on_scan_range(
    engine: &dyn Engine,
    req: OpId,
    from: u64,
    to: u64,
    limit: u32,
) -> Result<PeerMessage, ReplicaError> {
    let limits = index::PageLimits {
        entries_max: limit.clamp(1, SCAN_COUNT_MAX) as usize,
        key_bytes_max: SCAN_REPLY_KEY_BYTES_MAX,
    };
    let (entries, complete) = index::scan_positions(engine, from, to, limits)
        .map_err(|error| ReplicaError::Index(error.to_string()))?;
    let entries = entries
        .into_iter()
        .filter_map(|entry| match entry.version {
            EntryVersion::Register { tag, tombstone } => Some(ScanEntry {
                key: entry.key,
                tag,
                tombstone,
            }),
            EntryVersion::Eventual { .. } => None,
        })
        .collect();
    Ok(PeerMessage::ScanRangeAck {
        req,
        entries,
        complete,
    })
}

/// Key bytes in one scan answer (the first position always goes whole): well inside a
/// frame with the tags and framing.
const SCAN_REPLY_KEY_BYTES_MAX: usize = 512 << 10;

/// Stores `(tag, value)` iff `tag` is larger than the stored tag, durably; returns the
/// ack and what changed (`None`: nothing was written). A tombstone at or below
/// `purge_floor` for a key this replica holds nothing of is acknowledged unstored: the
/// replica purged it (`node/purge/`), and absent reads and shadows the same (a read's
/// write-back must not bring purged tombstones back).
///
/// A `tag` above the stored tag but below the key's promise is refused
/// ([`PeerMessage::Refused`]): a conditional write may already have read this replica.
pub(crate) fn on_write(
    engine: &dyn Engine,
    req: OpId,
    key: &[u8],
    tag: Tag,
    value: Option<Vec<u8>>,
    purge_floor: u64,
) -> Result<(PeerMessage, Option<RegisterChange>), ReplicaError> {
    let state = read_state(engine, key)?;
    if value.is_none() && tag.counter <= purge_floor && state.tag == Tag::ZERO {
        return Ok((PeerMessage::WriteAck { req }, None));
    }
    if tag == state.tag {
        return Ok((PeerMessage::WriteAck { req }, None));
    }
    // Below the fence, refused even where a larger tag is held: that version may be a
    // conditional round's, computed from a read that did not see this write, so
    // acknowledging the write as superseded would lose it (found by the simulator).
    if tag < state.promise {
        let refused = PeerMessage::Refused {
            req,
            above: state.promise,
            tag: state.tag,
        };
        return Ok((refused, None));
    }
    if tag < state.tag {
        return Ok((PeerMessage::WriteAck { req }, None));
    }
    let change = write_register(engine, key, &state, tag, value, state.promise)?;
    Ok((PeerMessage::WriteAck { req }, Some(change)))
}

/// Whether a store respects the key's promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Promises {
    /// Below the promise nothing lands (writes, accepts, anti-entropy pushes).
    Respect,
    /// Lands below the promise and keeps it: range streaming to a new owner, which
    /// must end up with every register the old owners hold.
    Keep,
}

/// A register write that took effect: the version it replaced (`None`: the key was
/// absent) and the new one. The node feeds it to its Merkle trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RegisterChange {
    pub old: Option<RegisterVersion>,
    pub new: RegisterVersion,
}

/// `Write` semantics: stores `(tag, value)` iff `tag` is larger than the stored tag
/// (and, with [`Promises::Respect`], not below the promise), with the key's
/// position-index entry in the same batch, durably. Idempotent, and a register never
/// moves backwards.
pub(crate) fn apply_register(
    engine: &dyn Engine,
    key: &[u8],
    tag: Tag,
    value: Option<Vec<u8>>,
    promises: Promises,
) -> Result<Option<RegisterChange>, ReplicaError> {
    let state = read_state(engine, key)?;
    if tag <= state.tag || (promises == Promises::Respect && tag < state.promise) {
        return Ok(None);
    }
    write_register(engine, key, &state, tag, value, state.promise).map(Some)
}

/// Stores `(tag, value)` over `state` (`tag > state.tag`, checked by the callers) with
/// the fence `promise` (kept iff `>= tag`: an accept keeps its own ballot as the fence,
/// so a late lower `Write` is refused rather than acknowledged as superseded).
fn write_register(
    engine: &dyn Engine,
    key: &[u8],
    state: &Register,
    tag: Tag,
    value: Option<Vec<u8>>,
    promise: Tag,
) -> Result<RegisterChange, ReplicaError> {
    debug_assert!(tag > state.tag);
    // Stored tags are > Tag::ZERO (only larger tags are ever stored), so ZERO = absent.
    let old =
        (state.tag != Tag::ZERO).then(|| RegisterVersion::of(state.tag, state.value.as_deref()));
    let new = RegisterVersion::of(tag, value.as_deref());
    let mut batch = WriteBatch::new();
    batch.put(data_key(key), encode_record(tag, value, promise)?);
    index::put_in_batch(&mut batch, key, &new);
    engine.write(&batch, WriteOptions::DURABLE)?;
    Ok(RegisterChange { old, new })
}

/// `key`'s record alone (its version unchanged, so the index is too), durably.
fn write_record(
    engine: &dyn Engine,
    key: &[u8],
    tag: Tag,
    value: Option<Vec<u8>>,
    promise: Tag,
) -> Result<(), ReplicaError> {
    let mut batch = WriteBatch::new();
    batch.put(data_key(key), encode_record(tag, value, promise)?);
    engine.write(&batch, WriteOptions::DURABLE)?;
    Ok(())
}

/// A plain `Register` when the promise is below the tag (no fence beyond the tag).
fn encode_record(tag: Tag, value: Option<Vec<u8>>, promise: Tag) -> Result<Vec<u8>, ReplicaError> {
    let record = if promise >= tag && promise != Tag::ZERO {
        Stored::Promised {
            tag,
            value,
            promise,
        }
    } else {
        Stored::Register { tag, value }
    };
    record.encode().map_err(ReplicaError::Encode)
}

/// Drops `key`'s register iff it is still the tombstone `tag` (`node/purge/`): its
/// `d/` record and index entry in one batch. Not synced: a purge lost in a crash is
/// only a tombstone kept a while longer (the next scan drops it). Returns the removed
/// version, for the Merkle trees. A tombstone under a promise above `purge_floor`
/// stays: the promise still fences stores of its round (one at or below the floor
/// belongs to an epoch whose messages every replica refuses).
pub(crate) fn purge_tombstone(
    engine: &dyn Engine,
    key: &[u8],
    tag: Tag,
    purge_floor: u64,
) -> Result<Option<RegisterVersion>, ReplicaError> {
    let state = read_state(engine, key)?;
    let fenced = state.promise > state.tag && state.promise.counter > purge_floor;
    if state.tag != tag || state.value.is_some() || fenced {
        return Ok(None);
    }
    let mut batch = WriteBatch::new();
    batch.delete(data_key(key));
    batch.delete(index::index_key(crate::ring::key_position(key), key));
    engine.write(&batch, WriteOptions::BUFFERED)?;
    Ok(Some(RegisterVersion::of(tag, None)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ring::NodeId;
    use crate::storage::blockstore::MemoryStore;
    use crate::storage::lsm::{LsmEngine, LsmOptions};

    fn tag(counter: u64) -> Tag {
        Tag {
            counter,
            node: NodeId(1),
        }
    }

    #[test]
    fn writes_apply_only_larger_tags_and_always_ack() {
        let engine =
            LsmEngine::open(Arc::new(MemoryStore::new()), LsmOptions::tiny()).expect("open");
        let req = OpId::default();
        assert_eq!(
            read_register(&engine, b"k").expect("read"),
            (Tag::ZERO, None)
        );
        let write = |t: Tag, v: &[u8]| {
            on_write(&engine, req, b"k", t, Some(v.to_vec()), 0)
                .expect("write")
                .1
                .is_some()
        };
        assert!(write(tag(2), b"two"));
        assert!(!write(tag(2), b"two")); // duplicate
        assert!(!write(tag(1), b"one")); // stale, late
        assert_eq!(
            on_read(&engine, req, b"k").expect("read"),
            PeerMessage::ReadAck {
                req,
                tag: tag(2),
                value: Some(b"two".to_vec())
            }
        );
        // A delete is a tombstone with its own tag.
        assert_eq!(
            on_write(&engine, req, b"k", tag(3), None, 0)
                .expect("delete")
                .1,
            Some(RegisterChange {
                old: Some(RegisterVersion::of(tag(2), Some(b"two"))),
                new: RegisterVersion::of(tag(3), None),
            })
        );
        assert_eq!(
            on_read_tag(&engine, req, b"k").expect("read"),
            PeerMessage::ReadTagAck { req, tag: tag(3) }
        );
        assert_eq!(read_register(&engine, b"k").expect("read").1, None);
    }

    /// A promise fences every store below it except range streaming; an accept is
    /// acknowledged only for its exact ballot or a store, never because a larger tag is
    /// held (that tag may come from a later round built on an older value).
    #[test]
    fn promises_fence_lower_stores_and_accepts_need_their_own_ballot() {
        let engine =
            LsmEngine::open(Arc::new(MemoryStore::new()), LsmOptions::tiny()).expect("open");
        let req = OpId::default();
        let refused = |above: Tag, stored: Tag| PeerMessage::Refused {
            req,
            above,
            tag: stored,
        };
        let write = |t: Tag, v: &[u8]| {
            on_write(&engine, req, b"k", t, Some(v.to_vec()), 0)
                .expect("write")
                .0
        };
        assert_eq!(write(tag(2), b"two"), PeerMessage::WriteAck { req });
        // A ballot at or below the tag is refused; above it, promised with the register.
        assert_eq!(
            on_prepare(&engine, req, b"k", tag(2)).expect("prepare"),
            refused(tag(2), tag(2))
        );
        assert_eq!(
            on_prepare(&engine, req, b"k", tag(5)).expect("prepare"),
            PeerMessage::Promise {
                req,
                tag: tag(2),
                value: Some(b"two".to_vec())
            }
        );
        // The promise survives as the fence puts read, and refuses lower writes.
        assert_eq!(
            on_read_tag(&engine, req, b"k").expect("read tag"),
            PeerMessage::ReadTagAck { req, tag: tag(5) }
        );
        assert_eq!(write(tag(3), b"three"), refused(tag(5), tag(2)));
        assert_eq!(write(tag(2), b"two"), PeerMessage::WriteAck { req }, "held");
        let pushed = apply_register(&engine, b"k", tag(4), None, Promises::Respect);
        assert_eq!(
            pushed.expect("push"),
            None,
            "anti-entropy respects the promise"
        );
        assert_eq!(read_register(&engine, b"k").expect("read").0, tag(2));
        // Range streaming lands below the promise and keeps it.
        let streamed = apply_register(&engine, b"k", tag(4), Some(b"4".to_vec()), Promises::Keep);
        assert!(streamed.expect("stream").is_some());
        assert_eq!(read_state(&engine, b"k").expect("state").promise, tag(5));
        assert_eq!(
            on_prepare(&engine, req, b"k", tag(4)).expect("prepare"),
            refused(tag(5), tag(4))
        );
        // The accept of the promised ballot lands; again is acknowledged (a resend).
        let accept =
            |b: Tag| on_accept(&engine, req, b"k", b, Some(b"acc".to_vec())).expect("accept");
        assert!(accept(tag(5)).1.is_some());
        assert_eq!(accept(tag(5)).0, PeerMessage::WriteAck { req });
        assert_eq!(read_state(&engine, b"k").expect("state").fence(), tag(5));
        // A late lower write is refused, not acknowledged as superseded: the accepted
        // value was computed from a read that did not see it (simulator, seed 243).
        assert_eq!(write(tag(3), b"late"), refused(tag(5), tag(5)));
        // A later write above it, then the late accept of an older round: refused.
        assert_eq!(write(tag(9), b"nine"), PeerMessage::WriteAck { req });
        assert_eq!(accept(tag(7)).0, refused(tag(9), tag(9)));
        assert_eq!(
            read_register(&engine, b"k").expect("read"),
            (tag(9), Some(b"nine".to_vec()))
        );
        // A promise on a key never written is no key, but still a fence.
        assert!(matches!(
            on_prepare(&engine, req, b"fresh", tag(3)).expect("prepare"),
            PeerMessage::Promise {
                tag: Tag::ZERO,
                value: None,
                ..
            }
        ));
        assert_eq!(
            read_register(&engine, b"fresh").expect("read"),
            (Tag::ZERO, None)
        );
        assert_eq!(
            on_write(&engine, req, b"fresh", tag(2), Some(b"x".to_vec()), 0)
                .expect("write")
                .0,
            refused(tag(3), Tag::ZERO)
        );
        assert_eq!(
            purge_tombstone(&engine, b"fresh", Tag::ZERO, 0).expect("purge"),
            None
        );
    }

    #[test]
    fn unreadable_records_are_errors_not_acks() {
        let engine =
            LsmEngine::open(Arc::new(MemoryStore::new()), LsmOptions::tiny()).expect("open");
        let mut batch = WriteBatch::new();
        batch.put(data_key(b"k"), vec![0xff, 0xff]);
        engine.write(&batch, WriteOptions::DURABLE).expect("write");
        assert!(matches!(
            on_write(&engine, OpId::default(), b"k", tag(9), None, 0),
            Err(ReplicaError::CorruptRecord(_))
        ));
    }
}

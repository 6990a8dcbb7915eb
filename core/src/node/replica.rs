//! The replica side of ABD: answer tag/value queries and apply writes by tag.
//!
//! Stateless between messages (everything is in the engine), so a message may be
//! duplicated, reordered or replayed late: `Write` applies only a strictly larger tag,
//! which makes it idempotent, and a stale `Write` can never move a register backwards.
//! Invariant: a `WriteAck` is produced only after the engine durably holds a tag at
//! least as large as the write's.
//!
//! [`apply_register`] is the one write path for registers: `Write` (puts, deletes,
//! read write-backs) and anti-entropy pushes both go through it, and it writes the
//! key's position-index entry (`ae/index.rs`) in the same batch as the record.

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

/// The register of `key`: `(Tag::ZERO, None)` if never written.
pub(crate) fn read_register(
    engine: &dyn Engine,
    key: &[u8],
) -> Result<(Tag, Option<Vec<u8>>), ReplicaError> {
    match engine.get(&data_key(key))? {
        None => Ok((Tag::ZERO, None)),
        Some(bytes) => match Stored::decode(&bytes).map_err(ReplicaError::CorruptRecord)? {
            Stored::Register { tag, value } => Ok((tag, value)),
        },
    }
}

pub(crate) fn on_read_tag(
    engine: &dyn Engine,
    req: OpId,
    key: &[u8],
) -> Result<PeerMessage, ReplicaError> {
    let (tag, _) = read_register(engine, key)?;
    Ok(PeerMessage::ReadTagAck { req, tag })
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
pub(crate) fn on_write(
    engine: &dyn Engine,
    req: OpId,
    key: &[u8],
    tag: Tag,
    value: Option<Vec<u8>>,
    purge_floor: u64,
) -> Result<(PeerMessage, Option<RegisterChange>), ReplicaError> {
    if value.is_none() && tag.counter <= purge_floor && read_register(engine, key)?.0 == Tag::ZERO {
        return Ok((PeerMessage::WriteAck { req }, None));
    }
    let change = apply_register(engine, key, tag, value)?;
    Ok((PeerMessage::WriteAck { req }, change))
}

/// A register write that took effect: the version it replaced (`None`: the key was
/// absent) and the new one. The node feeds it to its Merkle trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RegisterChange {
    pub old: Option<RegisterVersion>,
    pub new: RegisterVersion,
}

/// `Write` semantics: stores `(tag, value)` iff `tag` is larger than the stored tag,
/// with the key's position-index entry in the same batch, durably. Idempotent, and a
/// register never moves backwards.
pub(crate) fn apply_register(
    engine: &dyn Engine,
    key: &[u8],
    tag: Tag,
    value: Option<Vec<u8>>,
) -> Result<Option<RegisterChange>, ReplicaError> {
    let (stored_tag, stored_value) = read_register(engine, key)?;
    if tag <= stored_tag {
        return Ok(None);
    }
    // Stored tags are > Tag::ZERO (only larger tags are ever stored), so ZERO = absent.
    let old =
        (stored_tag != Tag::ZERO).then(|| RegisterVersion::of(stored_tag, stored_value.as_deref()));
    let new = RegisterVersion::of(tag, value.as_deref());
    let record = Stored::Register { tag, value }
        .encode()
        .map_err(ReplicaError::Encode)?;
    let mut batch = WriteBatch::new();
    batch.put(data_key(key), record);
    index::put_in_batch(&mut batch, key, &new);
    engine.write(&batch, WriteOptions::DURABLE)?;
    Ok(Some(RegisterChange { old, new }))
}

/// Drops `key`'s register iff it is still the tombstone `tag` (`node/purge/`): its
/// `d/` record and index entry in one batch. Not synced: a purge lost in a crash is
/// only a tombstone kept a while longer (the next scan drops it). Returns the removed
/// version, for the Merkle trees.
pub(crate) fn purge_tombstone(
    engine: &dyn Engine,
    key: &[u8],
    tag: Tag,
) -> Result<Option<RegisterVersion>, ReplicaError> {
    let (stored_tag, stored_value) = read_register(engine, key)?;
    if stored_tag != tag || stored_value.is_some() {
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

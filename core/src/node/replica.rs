//! The replica side of ABD: answer tag/value queries and apply writes by tag.
//!
//! Stateless between messages (everything is in the engine), so a message may be
//! duplicated, reordered or replayed late: `Write` applies only a strictly larger tag,
//! which makes it idempotent, and a stale `Write` can never move a register backwards.
//! Invariant: a `WriteAck` is produced only after the engine durably holds a tag at
//! least as large as the write's.
//!
//! [`apply_register`] is the one write path for registers: `Write` (puts, deletes,
//! read write-backs), range sync and anti-entropy pushes all go through it; it writes
//! the key's position-index entry (`ae/index.rs`) in the same batch as the record and
//! keeps the node's [`VersionCache`] equal to what the engine holds (`versions.rs`).

use thiserror::Error;

use crate::protocol::{OpId, PeerMessage};
use crate::storage::{Engine, StorageError, WriteBatch, WriteOptions};
use crate::versioning::Tag;

use super::ae::{index, RegisterVersion};
use super::stored::{data_key, Stored};
use super::versions::{VersionCache, ABSENT};

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

/// The version of `key`'s register (`ABSENT` if none): from the cache, or read from
/// the engine and cached.
fn read_version(
    engine: &dyn Engine,
    versions: &mut VersionCache,
    key: &[u8],
) -> Result<RegisterVersion, ReplicaError> {
    if let Some(version) = versions.get(key) {
        return Ok(version);
    }
    let (tag, value) = read_register(engine, key)?;
    let version = if tag == Tag::ZERO {
        ABSENT
    } else {
        RegisterVersion::of(tag, value.as_deref())
    };
    versions.put(key, version);
    Ok(version)
}

pub(crate) fn on_read_tag(
    engine: &dyn Engine,
    versions: &mut VersionCache,
    req: OpId,
    key: &[u8],
) -> Result<PeerMessage, ReplicaError> {
    let tag = read_version(engine, versions, key)?.tag;
    Ok(PeerMessage::ReadTagAck { req, tag })
}

pub(crate) fn on_read(
    engine: &dyn Engine,
    versions: &mut VersionCache,
    req: OpId,
    key: &[u8],
) -> Result<PeerMessage, ReplicaError> {
    let (tag, value) = read_register(engine, key)?;
    // A read's record is the key's current version: the write that usually follows a
    // read (its write-back, or the next put's `ReadTag`) needs no engine read.
    let version = if tag == Tag::ZERO {
        ABSENT
    } else {
        RegisterVersion::of(tag, value.as_deref())
    };
    versions.put(key, version);
    Ok(PeerMessage::ReadAck { req, tag, value })
}

/// Stores `(tag, value)` iff `tag` is larger than the stored tag, durably; returns the
/// ack and what changed (`None`: nothing was written).
pub(crate) fn on_write(
    engine: &dyn Engine,
    versions: &mut VersionCache,
    req: OpId,
    key: &[u8],
    tag: Tag,
    value: Option<Vec<u8>>,
) -> Result<(PeerMessage, Option<RegisterChange>), ReplicaError> {
    let change = apply_register(engine, versions, key, tag, value)?;
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
    versions: &mut VersionCache,
    key: &[u8],
    tag: Tag,
    value: Option<Vec<u8>>,
) -> Result<Option<RegisterChange>, ReplicaError> {
    let stored = read_version(engine, versions, key)?;
    if tag <= stored.tag {
        return Ok(None);
    }
    // Stored tags are > Tag::ZERO (only larger tags are ever stored), so ZERO = absent.
    let old = (stored.tag != Tag::ZERO).then_some(stored);
    let new = RegisterVersion::of(tag, value.as_deref());
    let record = Stored::Register { tag, value }
        .encode()
        .map_err(ReplicaError::Encode)?;
    let mut batch = WriteBatch::new();
    batch.put(data_key(key), record);
    index::put_in_batch(&mut batch, key, &new);
    engine.write(&batch, WriteOptions::DURABLE)?;
    // Only after the engine took it: a failed write leaves the cache as the engine is.
    versions.put(key, new);
    Ok(Some(RegisterChange { old, new }))
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
        let mut versions = VersionCache::new(16);
        let mut write = |t: Tag, v: &[u8]| {
            on_write(&engine, &mut versions, req, b"k", t, Some(v.to_vec()))
                .expect("write")
                .1
                .is_some()
        };
        assert!(write(tag(2), b"two"));
        assert!(!write(tag(2), b"two")); // duplicate
        assert!(!write(tag(1), b"one")); // stale, late
        let mut versions = VersionCache::new(16);
        assert_eq!(
            on_read(&engine, &mut versions, req, b"k").expect("read"),
            PeerMessage::ReadAck {
                req,
                tag: tag(2),
                value: Some(b"two".to_vec())
            }
        );
        // A delete is a tombstone with its own tag.
        assert_eq!(
            on_write(&engine, &mut versions, req, b"k", tag(3), None)
                .expect("delete")
                .1,
            Some(RegisterChange {
                old: Some(RegisterVersion::of(tag(2), Some(b"two"))),
                new: RegisterVersion::of(tag(3), None),
            })
        );
        assert_eq!(
            on_read_tag(&engine, &mut versions, req, b"k").expect("read"),
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
            on_write(
                &engine,
                &mut VersionCache::new(16),
                OpId::default(),
                b"k",
                tag(9),
                None
            ),
            Err(ReplicaError::CorruptRecord(_))
        ));
    }

    /// Through any mix of writes, stale writes, reads and evictions (a tiny cache over
    /// many keys), the cached path answers exactly what the engine holds: `ReadTag`
    /// never answers low and a `Write` is never wrongly refused or applied.
    #[test]
    fn the_version_cache_always_agrees_with_the_engine() {
        let engine =
            LsmEngine::open(Arc::new(MemoryStore::new()), LsmOptions::tiny()).expect("open");
        let mut versions = VersionCache::new(4);
        let req = OpId::default();
        let mut rng = crate::rand::SplitMix64::new(7);
        for step in 0..3000u64 {
            let key = format!("k{}", rng.below(12)).into_bytes();
            let (engine_tag, _) = read_register(&engine, &key).expect("read");
            match rng.below(3) {
                0 => {
                    let t = tag(rng.below(40) + 1);
                    let value = (step % 5 != 0).then(|| step.to_le_bytes().to_vec());
                    let applied = on_write(&engine, &mut versions, req, &key, t, value)
                        .expect("write")
                        .1
                        .is_some();
                    assert_eq!(applied, t > engine_tag, "step {step}");
                }
                1 => assert_eq!(
                    on_read_tag(&engine, &mut versions, req, &key).expect("read tag"),
                    PeerMessage::ReadTagAck {
                        req,
                        tag: engine_tag
                    },
                    "step {step}"
                ),
                _ => {
                    on_read(&engine, &mut versions, req, &key).expect("read");
                }
            }
            assert!(versions.len() <= 4);
        }
        let (hits, misses) = versions.stats();
        assert!(hits > 0 && misses > 0, "{hits} hits, {misses} misses");
    }
}

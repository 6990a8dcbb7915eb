//! The replica side of ABD: answer tag/value queries and apply writes by tag.
//!
//! Stateless between messages (everything is in the engine), so a message may be
//! duplicated, reordered or replayed late: `Write` applies only a strictly larger tag,
//! which makes it idempotent, and a stale `Write` can never move a register backwards.
//! Invariant: a `WriteAck` is produced only after the engine durably holds a tag at
//! least as large as the write's.

use thiserror::Error;

use crate::protocol::{OpId, PeerMessage};
use crate::storage::{Engine, StorageError, WriteBatch, WriteOptions};
use crate::versioning::Tag;

use super::stored::{data_key, Stored};

#[derive(Debug, Error)]
pub(crate) enum ReplicaError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("stored record for a key is unreadable: {0}")]
    CorruptRecord(postcard::Error),
    #[error("encoding a record failed: {0}")]
    Encode(postcard::Error),
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

/// Stores `(tag, value)` iff `tag` is larger than the stored tag, durably; returns the
/// ack and whether anything was written.
pub(crate) fn on_write(
    engine: &dyn Engine,
    req: OpId,
    key: &[u8],
    tag: Tag,
    value: Option<Vec<u8>>,
) -> Result<(PeerMessage, bool), ReplicaError> {
    let (stored_tag, _) = read_register(engine, key)?;
    let applied = tag > stored_tag;
    if applied {
        let record = Stored::Register { tag, value }
            .encode()
            .map_err(ReplicaError::Encode)?;
        let mut batch = WriteBatch::new();
        batch.put(data_key(key), record);
        engine.write(&batch, WriteOptions::DURABLE)?;
    }
    Ok((PeerMessage::WriteAck { req }, applied))
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
            on_write(&engine, req, b"k", t, Some(v.to_vec()))
                .expect("write")
                .1
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
        assert!(
            on_write(&engine, req, b"k", tag(3), None)
                .expect("delete")
                .1
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
            on_write(&engine, OpId::default(), b"k", tag(9), None),
            Err(ReplicaError::CorruptRecord(_))
        ));
    }
}

//! Replica data records: engine key `d/` + user key, value `postcard(Stored)`.

use serde::{Deserialize, Serialize};

use crate::versioning::Tag;

/// Engine key prefix of user data (metadata lives under `m/`, hints will under `h/`).
pub const DATA_PREFIX: &[u8] = b"d/";

/// What a replica stores for one user key. An enum so eventual-mode records
/// (`Siblings`) can be added as a new variant without a format break.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stored {
    /// A linearizable register: the value written with the largest tag seen so far.
    /// `value: None` is a delete (a tombstone: kept, so that its tag still orders later
    /// writes and wins over stale copies).
    Register { tag: Tag, value: Option<Vec<u8>> },
    /// A register that promised a conditional write's ballot above its tag
    /// (`promise > tag`; `node/coordinator/update.rs`): no store below `promise` may
    /// land. `tag == Tag::ZERO` (and no value) when the key was never written: such a
    /// promise-only record is not a key (no index entry, not listed, not streamed).
    /// A store at a tag `>= promise` writes a plain `Register` again: the tag then
    /// fences everything the promise did.
    Promised {
        tag: Tag,
        value: Option<Vec<u8>>,
        promise: Tag,
    },
}

impl Stored {
    pub fn encode(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_allocvec(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Stored, postcard::Error> {
        postcard::from_bytes(bytes)
    }

    /// The register's version, `None` for a promise-only record (a key never written).
    pub fn register(&self) -> Option<(Tag, Option<&[u8]>)> {
        match self {
            Stored::Register { tag, value } => Some((*tag, value.as_deref())),
            Stored::Promised { tag, value, .. } => {
                (*tag != Tag::ZERO).then_some((*tag, value.as_deref()))
            }
        }
    }
}

/// The engine key holding user key `key`.
pub fn data_key(key: &[u8]) -> Vec<u8> {
    let mut engine_key = Vec::with_capacity(DATA_PREFIX.len() + key.len());
    engine_key.extend_from_slice(DATA_PREFIX);
    engine_key.extend_from_slice(key);
    engine_key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::NodeId;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let record = Stored::Register {
            tag: Tag {
                counter: 3,
                node: NodeId(2),
            },
            value: Some(b"v".to_vec()),
        };
        let bytes = record.encode().expect("encodes");
        assert_eq!(Stored::decode(&bytes).expect("decodes"), record);
        assert!(Stored::decode(&[9, 9]).is_err());
        assert_eq!(data_key(b"k"), b"d/k".to_vec());
    }
}

//! Eventual-mode records on a replica: the `e/` keyspace (sibling states) and the `h/`
//! keyspace (hints held for other nodes).
//!
//! | engine key | value |
//! |---|---|
//! | `e/` + user key | `postcard(EventualRecord)` |
//! | `h/` + target node id (8 bytes, big-endian) + user key | `postcard(HintRecord)` |
//!
//! `e/` is disjoint from the linearizable registers under `d/`: the two modes never
//! read or write each other's records, so one user key may hold a register and a sibling
//! state that know nothing of each other. A key should be used in one mode only.
//!
//! One hint per (target, key): a later write for the same target merges into it, so the
//! number of hints is bounded by keys, and handing one hint off delivers every write it
//! absorbed. The big-endian target id groups a target's hints for a prefix scan.

use serde::{Deserialize, Serialize};

use crate::protocol::SiblingState;
use crate::ring::NodeId;

/// Engine key prefix of eventual-mode sibling states.
pub const EVENTUAL_PREFIX: &[u8] = b"e/";
/// Engine key prefix of hints.
pub const HINT_PREFIX: &[u8] = b"h/";

/// What a replica stores for one eventual key. An enum so the format can evolve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventualRecord {
    Siblings(SiblingState),
}

/// A hint: the state a fallback accepted on behalf of `target` (in the engine key),
/// to be merged into the target's copy once it is reachable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HintRecord {
    V1 { state: SiblingState },
}

impl EventualRecord {
    pub fn encode(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_allocvec(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<EventualRecord, postcard::Error> {
        postcard::from_bytes(bytes)
    }

    pub fn into_state(self) -> SiblingState {
        match self {
            EventualRecord::Siblings(state) => state,
        }
    }
}

impl HintRecord {
    pub fn encode(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_allocvec(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<HintRecord, postcard::Error> {
        postcard::from_bytes(bytes)
    }

    pub fn into_state(self) -> SiblingState {
        match self {
            HintRecord::V1 { state } => state,
        }
    }
}

/// The engine key of eventual user key `key`.
pub fn eventual_key(key: &[u8]) -> Vec<u8> {
    let mut engine_key = Vec::with_capacity(EVENTUAL_PREFIX.len() + key.len());
    engine_key.extend_from_slice(EVENTUAL_PREFIX);
    engine_key.extend_from_slice(key);
    engine_key
}

/// The prefix of every hint held for `target`.
pub fn hint_prefix(target: NodeId) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(HINT_PREFIX.len() + 8);
    prefix.extend_from_slice(HINT_PREFIX);
    prefix.extend_from_slice(&target.0.to_be_bytes());
    prefix
}

/// The engine key of the hint for `target` about user key `key`.
pub fn hint_key(target: NodeId, key: &[u8]) -> Vec<u8> {
    let mut engine_key = hint_prefix(target);
    engine_key.extend_from_slice(key);
    engine_key
}

/// `(target, user key)` of a hint's engine key; `None` if it is not one.
pub fn split_hint_key(engine_key: &[u8]) -> Option<(NodeId, &[u8])> {
    let rest = engine_key.strip_prefix(HINT_PREFIX)?;
    let (id, key) = rest.split_first_chunk::<8>()?;
    Some((NodeId(u64::from_be_bytes(*id)), key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::versioning::VersionVector;

    #[test]
    fn keys_and_records_round_trip() {
        assert_eq!(eventual_key(b"k"), b"e/k".to_vec());
        let key = hint_key(NodeId(258), b"user/key");
        assert_eq!(&key[..10], b"h/\0\0\0\0\0\0\x01\x02");
        assert_eq!(split_hint_key(&key), Some((NodeId(258), &b"user/key"[..])));
        assert_eq!(split_hint_key(b"h/short"), None);
        assert_eq!(split_hint_key(b"e/whatever-long"), None);
        assert!(key.starts_with(&hint_prefix(NodeId(258))));

        let mut state = SiblingState::new();
        state
            .update(&VersionVector::new(), NodeId(1), Some(b"v".to_vec()))
            .expect("update");
        let record = EventualRecord::Siblings(state.clone());
        let bytes = record.encode().expect("encode");
        assert_eq!(EventualRecord::decode(&bytes).expect("decode"), record);
        let hint = HintRecord::V1 { state };
        let bytes = hint.encode().expect("encode");
        assert_eq!(HintRecord::decode(&bytes).expect("decode"), hint);
        assert!(EventualRecord::decode(&[7, 7, 7]).is_err());
    }
}

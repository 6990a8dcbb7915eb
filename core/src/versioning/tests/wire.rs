//! Serde round trips through postcard, and normalization of untrusted states.

use std::collections::BTreeMap;

use serde::Serialize;

use super::super::{Dot, Siblings, Tag, VersionVector};
use crate::ring::NodeId;

#[derive(Serialize)]
struct ForgedSiblings {
    seen: BTreeMap<NodeId, u64>,
    live: Vec<(Dot, u8)>,
}

fn decode(forged: &ForgedSiblings) -> Siblings<u8> {
    postcard::from_bytes(&postcard::to_allocvec(forged).expect("encode")).expect("decode")
}

#[test]
fn states_round_trip() {
    let mut state: Siblings<Option<Vec<u8>>> = Siblings::new();
    state
        .update(&VersionVector::new(), NodeId(1), Some(b"a".to_vec()))
        .expect("counter");
    state
        .update(&VersionVector::new(), NodeId(2), None)
        .expect("counter");
    let bytes = postcard::to_allocvec(&state).expect("encode");
    let decoded: Siblings<Option<Vec<u8>>> = postcard::from_bytes(&bytes).expect("decode");
    assert_eq!(decoded, state);
    let tag = Tag {
        counter: 7,
        node: NodeId(3),
    };
    assert_eq!(
        postcard::from_bytes::<Tag>(&postcard::to_allocvec(&tag).expect("encode")),
        Ok(tag)
    );
}

#[test]
fn decoding_restores_invariants() {
    // A live dot missing from `seen`, a zero counter, a zero vector entry, a repeated dot.
    let forged = ForgedSiblings {
        seen: BTreeMap::from([(NodeId(1), 1), (NodeId(5), 0)]),
        live: vec![
            (Dot::new(NodeId(2), 3), 10),
            (Dot::new(NodeId(3), 0), 11),
            (Dot::new(NodeId(2), 3), 12),
        ],
    };
    let state = decode(&forged);
    let expected_seen: VersionVector = [(NodeId(1), 1), (NodeId(2), 3)].into_iter().collect();
    assert_eq!(state.context(), expected_seen);
    assert_eq!(state.values().copied().collect::<Vec<_>>(), vec![12]);
    // And it still merges as a valid state.
    assert_eq!(state.merged(&Siblings::new()), state);
}

//! One node driven by hand with eventual-mode peer messages: idempotent updates,
//! hint-target filtering, limits, storage failures. Multi-node scenarios are in
//! `core/tests/node_eventual.rs`.

use std::sync::Arc;

use super::stored::{eventual_key, hint_key, EventualRecord};
use crate::node::{Input, Node, NodeConfig, Output};
use crate::protocol::{OpId, PeerMessage, SiblingState};
use crate::ring::{NodeId, NodeSpec};
use crate::storage::blockstore::{Fault, FaultStore, MemoryStore};
use crate::storage::lsm::{LsmEngine, LsmOptions};
use crate::storage::{BlockStore, Engine};
use crate::versioning::VersionVector;

fn config() -> NodeConfig {
    let members: Vec<NodeSpec> = (1..=3)
        .map(|i| NodeSpec::new(i, format!("z{i}"), 1))
        .collect();
    NodeConfig::for_member(&members[0], members.clone())
}

fn open(store: Arc<dyn BlockStore>) -> (Node, Arc<dyn Engine>) {
    let engine: Arc<dyn Engine> =
        Arc::new(LsmEngine::open(store, LsmOptions::tiny()).expect("open engine"));
    let node = Node::open(config(), engine.clone(), 7, 1000).expect("open node");
    (node, engine)
}

fn deliver(node: &mut Node, from: u64, message: PeerMessage) -> Vec<PeerMessage> {
    node.handle(
        1000,
        Input::Peer {
            from: NodeId(from),
            message,
        },
    );
    std::iter::from_fn(|| node.poll_output())
        .filter_map(|output| match output {
            Output::Send { message, .. } => Some(message),
            Output::Reply { .. } => None,
        })
        .filter(|m| !matches!(m, PeerMessage::Gossip { .. }))
        .collect()
}

fn stored(engine: &dyn Engine, key: &[u8]) -> Option<SiblingState> {
    let bytes = engine.get(&eventual_key(key)).expect("get")?;
    Some(EventualRecord::decode(&bytes).expect("decode").into_state())
}

fn req(seq: u64) -> OpId {
    OpId {
        coordinator: NodeId(2),
        incarnation: 1,
        seq,
    }
}

fn update(seq: u64, hint_for: Option<NodeId>) -> PeerMessage {
    PeerMessage::EventualUpdate {
        req: req(seq),
        key: b"k".to_vec(),
        context: VersionVector::new(),
        value: Some(b"v".to_vec()),
        hint_for,
    }
}

#[test]
fn a_resent_update_is_answered_from_the_stored_state_not_applied_again() {
    let (mut node, engine) = open(Arc::new(MemoryStore::new()));
    let first = deliver(&mut node, 2, update(1, None));
    let again = deliver(&mut node, 2, update(1, None));
    assert_eq!(first, again);
    assert!(matches!(
        first.as_slice(),
        [PeerMessage::EventualUpdateAck { state, .. }] if state.len() == 1
    ));
    assert_eq!(stored(engine.as_ref(), b"k").map(|s| s.len()), Some(1));
    // A different request is a different write: a concurrent sibling.
    deliver(&mut node, 2, update(2, None));
    assert_eq!(stored(engine.as_ref(), b"k").map(|s| s.len()), Some(2));
    assert_eq!(node.status().counters.eventual_writes_applied, 2);
}

#[test]
fn hints_are_kept_only_for_other_members() {
    let (mut node, engine) = open(Arc::new(MemoryStore::new()));
    for (seq, hint_for) in [(1, NodeId(99)), (2, NodeId(1))] {
        let answer = deliver(&mut node, 2, update(seq, Some(hint_for)));
        assert!(matches!(
            answer.as_slice(),
            [PeerMessage::EventualUpdateAck { .. }]
        ));
        assert_eq!(engine.get(&hint_key(hint_for, b"k")).expect("get"), None);
    }
    assert!(node.status().hint_queues.is_empty());
    deliver(&mut node, 2, update(3, Some(NodeId(3))));
    assert!(engine
        .get(&hint_key(NodeId(3), b"k"))
        .expect("get")
        .is_some());
    assert_eq!(
        node.status().hint_queues,
        std::collections::BTreeMap::from([(NodeId(3), 1)])
    );
}

#[test]
fn messages_over_the_limits_and_from_strangers_are_ignored() {
    let (mut node, engine) = open(Arc::new(MemoryStore::new()));
    let long_key = vec![b'k'; config().key_size_bytes_max + 1];
    let read = PeerMessage::EventualRead {
        req: req(1),
        key: long_key,
    };
    assert!(deliver(&mut node, 2, read).is_empty());
    let big = PeerMessage::EventualUpdate {
        req: req(2),
        key: b"k".to_vec(),
        context: VersionVector::new(),
        value: Some(vec![0; config().value_size_bytes_max + 1]),
        hint_for: None,
    };
    assert!(deliver(&mut node, 2, big).is_empty());
    assert!(deliver(&mut node, 42, update(3, None)).is_empty());
    assert_eq!(node.status().counters.messages_ignored, 3);
    assert_eq!(stored(engine.as_ref(), b"k"), None);
    // Replies nobody waits for are stale, not errors.
    let stray = PeerMessage::EventualMergeAck { req: req(4) };
    assert!(deliver(&mut node, 2, stray).is_empty());
    assert_eq!(node.status().counters.stale_replies, 1);
}

#[test]
fn storage_failure_means_no_eventual_ack() {
    let store = FaultStore::new();
    let (mut node, _engine) = open(Arc::new(store.clone()));
    store.plan(store.stats().ops, Fault::Eio);
    assert!(deliver(&mut node, 2, update(1, Some(NodeId(3)))).is_empty());
    let status = node.status();
    assert_eq!(status.counters.storage_errors, 1);
    assert!(status.last_storage_error.is_some());
    assert!(
        status.hint_queues.is_empty(),
        "no hint counted for a failed write"
    );
}

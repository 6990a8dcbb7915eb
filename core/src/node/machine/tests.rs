//! Single-node behaviour driven by hand: admission, limits, peer filtering, storage
//! failures, time. Multi-node ABD scenarios are in `core/tests/node_abd.rs`.

use std::sync::Arc;

use super::*;
use crate::node::{MemberState, Output};
use crate::protocol::OpId;
use crate::ring::NodeSpec;
use crate::storage::blockstore::{Fault, FaultStore, MemoryStore};
use crate::storage::lsm::{LsmEngine, LsmOptions};
use crate::storage::BlockStore;
use crate::versioning::Tag;

fn members() -> Vec<NodeSpec> {
    (1..=3)
        .map(|i| NodeSpec::new(i, format!("z{i}"), 1))
        .collect()
}

fn config(id: u64) -> NodeConfig {
    let members = members();
    let spec = members[id as usize - 1].clone();
    NodeConfig::for_member(&spec, members)
}

fn engine(store: Arc<dyn BlockStore>) -> Arc<dyn Engine> {
    Arc::new(LsmEngine::open(store, LsmOptions::tiny()).expect("open engine"))
}

fn node(config: NodeConfig) -> Node {
    Node::open(config, engine(Arc::new(MemoryStore::new())), 7, 1000).expect("open node")
}

fn drain(node: &mut Node) -> Vec<Output> {
    std::iter::from_fn(|| node.poll_output()).collect()
}

fn replies(outputs: &[Output]) -> Vec<(RequestId, ClientReply)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Reply { id, reply } => Some((*id, reply.clone())),
            Output::Send { .. } => None,
        })
        .collect()
}

fn put(key: &[u8], value: &[u8]) -> ClientRequest {
    ClientRequest::Put {
        key: key.to_vec(),
        value: value.to_vec(),
        consistency: Consistency::Linearizable,
    }
}

#[test]
fn refuses_bad_contexts_oversized_and_excess_requests() {
    let mut cfg = config(1);
    cfg.in_flight_requests_max = 1;
    cfg.key_size_bytes_max = 4;
    cfg.value_size_bytes_max = 4;
    let mut node = node(cfg);
    // An eventual write whose context this cluster never handed out.
    let eventual = ClientRequest::PutEventual {
        key: b"k".to_vec(),
        value: b"v".to_vec(),
        context: Some(vec![0xde, 0xad]),
    };
    node.handle(
        1000,
        Input::Client {
            id: RequestId(1),
            request: eventual,
        },
    );
    node.handle(
        1000,
        Input::Client {
            id: RequestId(2),
            request: put(b"kkkkk", b"v"),
        },
    );
    node.handle(
        1000,
        Input::Client {
            id: RequestId(3),
            request: put(b"k", b"vvvvv"),
        },
    );
    node.handle(
        1000,
        Input::Client {
            id: RequestId(4),
            request: put(b"k", b"v"),
        },
    );
    node.handle(
        1000,
        Input::Client {
            id: RequestId(5),
            request: put(b"k", b"v"),
        },
    );
    let got = replies(&drain(&mut node));
    assert!(matches!(
        &got[0],
        (RequestId(1), ClientReply::Error(ClientError::InvalidContext { reason })) if reason.contains("version")
    ));
    assert_eq!(
        got[1].1,
        ClientReply::Error(ClientError::TooLarge {
            what: Oversized::Key,
            size_bytes: 5,
            limit_bytes: 4
        })
    );
    assert!(matches!(
        got[2].1,
        ClientReply::Error(ClientError::TooLarge {
            what: Oversized::Value,
            ..
        })
    ));
    // Request 4 is in flight (its peers never answer here); 5 exceeds the bound.
    assert_eq!(
        got[3],
        (RequestId(5), ClientReply::Error(ClientError::Overloaded))
    );
    assert_eq!(got.len(), 4);
    let status = node.status();
    assert_eq!(status.in_flight_requests, 1);
    assert_eq!(
        (status.counters.rejected, status.counters.overloaded),
        (3, 1)
    );
}

#[test]
fn phase_one_goes_to_every_replica_and_times_out_as_unavailable() {
    let mut node = node(config(1));
    node.handle(
        1000,
        Input::Client {
            id: RequestId(1),
            request: put(b"k", b"v"),
        },
    );
    let mut sent: Vec<NodeId> = drain(&mut node)
        .into_iter()
        .filter_map(|o| match o {
            Output::Send {
                to,
                message: PeerMessage::ReadTag { .. },
            } => Some(to),
            _ => None,
        })
        .collect();
    sent.sort();
    assert_eq!(sent, vec![NodeId(2), NodeId(3)]); // and itself through the loopback
                                                  // Resends every request_timeout / 4 until the phase deadline.
    assert!(node.poll_timeout().is_some_and(|at| at <= 1250));
    let mut resent = 0;
    let mut now = 1000;
    while now < 2000 {
        now = node.poll_timeout().expect("always some");
        node.handle(now, Input::Tick);
        for output in drain(&mut node) {
            match output {
                Output::Send {
                    message: PeerMessage::ReadTag { .. },
                    ..
                } => resent += 1,
                Output::Reply { reply, .. } => {
                    assert!(matches!(
                        reply,
                        ClientReply::Error(ClientError::Unavailable { .. })
                    ));
                    assert!(now >= 2000);
                }
                Output::Send { .. } => {}
            }
        }
    }
    assert_eq!(resent, 6); // at 1250, 1500, 1750 to both peers
    assert_eq!(node.status().counters.unavailable, 1);
    assert_eq!(node.status().in_flight_requests, 0);
}

#[test]
fn ignores_non_members_and_stale_replies() {
    let mut node = node(config(1));
    let read = PeerMessage::Read {
        req: OpId::default(),
        epoch: 1,
        key: b"k".to_vec(),
    };
    node.handle(
        1000,
        Input::Peer {
            from: NodeId(42),
            message: read.clone(),
        },
    );
    assert!(drain(&mut node).is_empty());
    node.handle(
        1000,
        Input::Peer {
            from: NodeId(2),
            message: read,
        },
    );
    assert!(matches!(
        drain(&mut node).as_slice(),
        [Output::Send {
            to: NodeId(2),
            message: PeerMessage::ReadAck {
                tag: Tag::ZERO,
                value: None,
                ..
            }
        }]
    ));
    let stale = PeerMessage::WriteAck {
        req: OpId {
            coordinator: NodeId(1),
            incarnation: 0,
            seq: 0,
        },
    };
    node.handle(
        1000,
        Input::Peer {
            from: NodeId(2),
            message: stale,
        },
    );
    let counters = node.status().counters;
    assert_eq!((counters.messages_ignored, counters.stale_replies), (1, 1));
}

#[test]
fn storage_failure_means_no_ack() {
    let store = FaultStore::new();
    let mut node = Node::open(config(1), engine(Arc::new(store.clone())), 7, 1000).expect("open");
    store.plan(store.stats().ops, Fault::Eio);
    let write = PeerMessage::Write {
        req: OpId::default(),
        epoch: 1,
        key: b"k".to_vec(),
        tag: Tag {
            counter: 1,
            node: NodeId(2),
        },
        value: Some(b"v".to_vec()),
    };
    node.handle(
        1000,
        Input::Peer {
            from: NodeId(2),
            message: write,
        },
    );
    assert!(drain(&mut node).is_empty());
    let status = node.status();
    assert_eq!(status.counters.storage_errors, 1);
    assert!(status.last_storage_error.is_some());
}

#[test]
fn gossip_is_periodic_and_time_never_runs_backwards() {
    let mut node = node(config(1));
    let first = node.poll_timeout().expect("gossip");
    assert!((1000..1100).contains(&first));
    node.handle(first, Input::Tick);
    let gossip: Vec<_> = drain(&mut node);
    assert_eq!(gossip.len(), 2); // fanout 2 of 2 live peers
    assert!(gossip.iter().all(|o| matches!(
        o,
        Output::Send {
            message: PeerMessage::Gossip { .. },
            ..
        }
    )));
    assert_eq!(node.poll_timeout(), Some(first + 100));
    node.handle(5, Input::Tick); // a clock stepping back is ignored
    assert_eq!(node.status().now_ms, first);
    // Peers that never speak become suspect, then dead.
    node.handle(first + 600, Input::Tick);
    assert_eq!(
        node.status().member(NodeId(2)).map(|m| m.state),
        Some(MemberState::Suspect)
    );
    node.handle(first + 2100, Input::Tick);
    assert_eq!(
        node.status().member(NodeId(2)).map(|m| m.state),
        Some(MemberState::Dead)
    );
    assert_eq!(
        node.status().member(NodeId(1)).map(|m| m.state),
        Some(MemberState::Alive)
    );
}

#[test]
fn persisted_identity_and_members_win_over_config() {
    let store: Arc<dyn BlockStore> = Arc::new(MemoryStore::new());
    assert_eq!(
        Node::stored_id(&*engine(store.clone())).expect("read"),
        None
    );
    let first = Node::open(config(1), engine(store.clone()), 1, 0).expect("open");
    assert_eq!(
        (first.status().incarnation, first.status().notes.len()),
        (1, 0)
    );
    drop(first);
    let mut other = config(2);
    other.members.push(NodeSpec::new(4, "z4", 1));
    assert_eq!(
        Node::stored_id(&*engine(store.clone())).expect("read"),
        Some(NodeId(1))
    );
    let again = Node::open(other, engine(store), 1, 0).expect("reopen");
    let status = again.status();
    assert_eq!((status.id, status.incarnation), (NodeId(1), 2));
    assert_eq!(status.members.len(), 3);
    assert_eq!(status.notes.len(), 2, "{:?}", status.notes);
}

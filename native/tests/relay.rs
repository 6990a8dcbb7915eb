//! A replica without a listener (what a browser or edge-worker replica is) joins a
//! 3-node cluster of real processes through the `/replica` relay: a `ringkv_core`
//! `Node` in this test process, attached to node 1 over WebSocket. Values written
//! through RESP are read through the attached replica and back; with one native node
//! killed its linearizable reads and writes still succeed; with two of a key's three
//! replicas killed that key answers UNAVAILABLE. The relay refuses impersonation.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::peer::{accept_as, wait_for, PeerLink};
use common::{Cluster, NodeProc, Value};
use futures_util::{SinkExt, StreamExt};
use ringkv::cmd::client::Client;
use ringkv::wire;
use ringkv_core::node::{
    AdminRequest, ClientError, ClientReply, ClientRequest, Consistency, Input, Node, NodeConfig,
    Output, PeerMessage, RequestId, Role,
};
use ringkv_core::protocol;
use ringkv_core::protocol::wire::{ReplicaDown, ReplicaUp};
use ringkv_core::protocol::{Ballot, LayoutReport};
use ringkv_core::ring::{LayoutHistory, NodeId, NodeSpec, RingLayout};
use ringkv_core::storage::blockstore::MemoryStore;
use ringkv_core::storage::lsm::{LsmEngine, LsmOptions};
use tokio_tungstenite::tungstenite::Message;

const REPLICA: NodeId = NodeId(50);

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn attach(host: &str, id: NodeId) -> Result<(Ws, String), String> {
    attach_with(host, id, b"test replica identity secret").await
}

/// Attaches as `id` proving identity `secret`.
async fn attach_with(host: &str, id: NodeId, secret: &[u8]) -> Result<(Ws, String), String> {
    let tcp = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| e.to_string())?;
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{host}/replica"), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let hello = wire::encode(&ReplicaUp::Hello {
        token: None,
        id: Some(id),
        secret: secret.to_vec(),
    })
    .map_err(|e| e.to_string())?;
    ws.send(Message::Binary(hello.into()))
        .await
        .map_err(|e| e.to_string())?;
    match ws.next().await {
        Some(Ok(Message::Binary(bytes))) => match wire::decode::<ReplicaDown>(&bytes) {
            Ok(ReplicaDown::Welcome { address, .. }) => Ok((ws, address)),
            Ok(ReplicaDown::Refused { reason }) => Err(reason),
            other => Err(format!("unexpected {other:?}")),
        },
        other => Err(format!("unexpected {other:?}")),
    }
}

/// The replica's host loop: a core `Node` whose peer traffic goes through the relay.
struct Replica {
    node: Node,
    ws: Ws,
    start: Instant,
    replies: BTreeMap<RequestId, ClientReply>,
    next_id: u64,
}

impl Replica {
    fn now_ms(&self) -> u64 {
        1_000 + self.start.elapsed().as_millis() as u64
    }

    async fn flush(&mut self) {
        while let Some(output) = self.node.poll_output() {
            match output {
                Output::Send { to, message } => {
                    let frame = protocol::encode(&message).expect("encodes");
                    let up = wire::encode(&ReplicaUp::Peer { to, frame }).expect("encodes");
                    let _ = self.ws.send(Message::Binary(up.into())).await;
                }
                Output::Reply { id, reply } => {
                    self.replies.insert(id, reply);
                }
            }
        }
    }

    /// Runs the node for up to `ms`: relayed frames in, timers, outputs out.
    async fn run_for(&mut self, ms: u64) {
        let until = Instant::now() + Duration::from_millis(ms);
        while Instant::now() < until {
            let wake = self.node.poll_timeout().unwrap_or(u64::MAX);
            let sleep_ms = wake.saturating_sub(self.now_ms()).clamp(1, 20);
            tokio::select! {
                frame = self.ws.next() => {
                    if let Some(Ok(Message::Binary(bytes))) = frame {
                        if let Ok(ReplicaDown::Peer { from, frame }) = wire::decode(&bytes) {
                            for message in protocol::decode_frame(&frame).unwrap_or_default() {
                                let now = self.now_ms();
                                self.node.handle(now, Input::Peer { from, message });
                            }
                        }
                    }
                }
                _ = tokio::time::sleep(Duration::from_millis(sleep_ms)) => {
                    let now = self.now_ms();
                    self.node.handle(now, Input::Tick);
                }
            }
            self.flush().await;
        }
    }

    async fn call(&mut self, request: ClientRequest) -> ClientReply {
        self.next_id += 1;
        let id = RequestId(self.next_id);
        let now = self.now_ms();
        self.node.handle(now, Input::Client { id, request });
        self.flush().await;
        for _ in 0..500 {
            if let Some(reply) = self.replies.remove(&id) {
                return reply;
            }
            self.run_for(10).await;
        }
        panic!("no reply from the replica's node");
    }
}

/// Opens a replica (a core `Node` on a memory store) as `id`, attaches it to `host`
/// with its identity secret and has `host` add it; returns once the change committed.
async fn join_replica(host: &str, id: NodeId, members: usize) -> Replica {
    let engine = Arc::new(
        LsmEngine::open(Arc::new(MemoryStore::new()), LsmOptions::tiny()).expect("engine"),
    );
    let node = Node::open(
        NodeConfig::new(id, "browser", 1, Vec::new()),
        engine,
        7,
        1_000,
    )
    .expect("open");
    let secret = node.identity_secret().to_vec();
    let (ws, address) = attach_with(host, id, &secret).await.expect("attach");
    let spec = node.join_spec(address);
    let mut replica = Replica {
        node,
        ws,
        start: Instant::now(),
        replies: BTreeMap::new(),
        next_id: 0,
    };
    let mut admin = Client::connect(host, &Default::default())
        .await
        .expect("client");
    let joined = admin
        .request(ClientRequest::Admin(AdminRequest::Join(spec)))
        .await
        .expect("join request");
    assert_eq!(joined, ClientReply::Done);
    for _ in 0..300 {
        replica.run_for(50).await;
        let status = replica.node.status();
        if status.membership.role == Role::Member
            && status.membership.pending_version.is_none()
            && status.layout.nodes().len() == members
        {
            return replica;
        }
    }
    panic!(
        "the replica never became a member: {:?}",
        replica.node.status().membership
    );
}

/// Sends `message` as the replica (through its host) to `to`.
async fn send_as_replica(ws: &mut Ws, to: NodeId, message: &PeerMessage) {
    let frame = protocol::encode(message).expect("encodes");
    let up = wire::encode(&ReplicaUp::Peer { to, frame }).expect("encodes");
    ws.send(Message::Binary(up.into())).await.expect("send");
}

fn layout_version(node: &common::NodeProc) -> u64 {
    let status = common::http_get(&node.http, "/status").expect("status");
    let body = status
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    json["layout_version"].as_u64().expect("layout_version")
}

fn get(key: &str) -> ClientRequest {
    ClientRequest::Get {
        key: key.into(),
        consistency: Consistency::Linearizable,
    }
}

fn put(key: &str, value: &str) -> ClientRequest {
    ClientRequest::Put {
        key: key.into(),
        value: value.into(),
        consistency: Consistency::Linearizable,
    }
}

#[test]
fn a_relayed_replica_joins_and_serves_linearizably() {
    let mut cluster = Cluster::start_seeded(3, &[]);
    let host = cluster.nodes[0].ws.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // Impersonating a native member is refused.
        let refused = attach(&host, NodeId(2)).await;
        assert!(refused.is_err(), "attached as n2: {refused:?}");

        let engine = Arc::new(
            LsmEngine::open(Arc::new(MemoryStore::new()), LsmOptions::tiny()).expect("engine"),
        );
        let node = Node::open(
            NodeConfig::new(REPLICA, "browser", 1, Vec::new()),
            engine,
            7,
            1_000,
        )
        .expect("open");
        let secret = node.identity_secret().to_vec();
        let (ws, address) = attach_with(&host, REPLICA, &secret).await.expect("attach");
        assert_eq!(address, "relay:1");
        // A second session for the same id is refused while the first is attached.
        assert!(attach_with(&host, REPLICA, &secret).await.is_err());
        let spec = node.join_spec(address);
        let mut replica = Replica {
            node,
            ws,
            start: Instant::now(),
            replies: BTreeMap::new(),
            next_id: 0,
        };
        let mut admin = Client::connect(&host, &Default::default())
            .await
            .expect("client");
        let joined = admin
            .request(ClientRequest::Admin(AdminRequest::Join(spec)))
            .await
            .expect("join request");
        assert_eq!(joined, ClientReply::Done);
        // Until the change has committed on the replica (its ranges streamed to it).
        for _ in 0..300 {
            replica.run_for(50).await;
            let status = replica.node.status();
            if status.membership.role == Role::Member
                && status.membership.pending_version.is_none()
                && status.layout.nodes().len() == 4
            {
                break;
            }
        }
        let status = replica.node.status();
        assert_eq!(
            status.membership.role,
            Role::Member,
            "{:?}",
            status.membership
        );
        assert!(
            status.membership.pending_version.is_none(),
            "{:?}",
            status.membership
        );

        // RESP on n2 → the replica, and the replica → RESP on n3.
        assert_eq!(
            cluster.nodes[1].resp().call(&["SET", "from-resp", "r1"]),
            Value::ok()
        );
        assert_eq!(
            replica.call(get("from-resp")).await,
            ClientReply::Value(Some(b"r1".to_vec()))
        );
        assert_eq!(
            replica.call(put("from-replica", "w1")).await,
            ClientReply::Done
        );
        assert_eq!(
            cluster.nodes[2].resp().call(&["GET", "from-replica"]),
            Value::bulk("w1")
        );

        // A key whose replicas include n2 and n3 (and so not n1 and the replica both).
        let layout = replica.node.status().layout;
        let key = (0..10_000)
            .map(|i| format!("key-{i}"))
            .find(|k| {
                let owners = layout.preference_list(k.as_bytes());
                owners.contains(&NodeId(2)) && owners.contains(&NodeId(3))
            })
            .expect("some key lives on n2 and n3");
        assert_eq!(replica.call(put(&key, "before")).await, ClientReply::Done);

        // One native node down: linearizable reads and writes through the replica work.
        cluster.nodes[2].kill9();
        replica.run_for(500).await;
        assert_eq!(replica.call(put(&key, "after")).await, ClientReply::Done);
        assert_eq!(
            replica.call(get(&key)).await,
            ClientReply::Value(Some(b"after".to_vec()))
        );

        // Two of the key's three replicas down: UNAVAILABLE, not a stale answer.
        cluster.nodes[1].kill9();
        replica.run_for(3_000).await;
        let reply = replica.call(get(&key)).await;
        assert!(
            matches!(reply, ClientReply::Error(ClientError::Unavailable { .. })),
            "{reply:?}"
        );
        let reply = replica.call(put(&key, "lost")).await;
        assert!(
            matches!(reply, ClientReply::Error(ClientError::Unavailable { .. })),
            "{reply:?}"
        );
    });
}

#[test]
fn a_silent_attachment_is_released_so_the_replica_can_attach_again() {
    // A replica whose connection went half-open (it neither sends nor answers pings)
    // holds its id until the host gives up on it; then the id can attach anew.
    let cluster = Cluster::start_seeded(1, &[]);
    let host = cluster.nodes[0].ws.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // Never polled again: pings go unanswered, like a peer that vanished.
        let (_silent, _) = attach(&host, REPLICA).await.expect("attach");
        assert!(
            attach(&host, REPLICA).await.is_err(),
            "exclusive while alive"
        );
        let start = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if attach(&host, REPLICA).await.is_ok() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(40),
                "the silent attachment was never released"
            );
        }
        // 15 s of silence (pings every 5 s): released between 15 and about 21 s.
        assert!(
            start.elapsed() >= Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    });
}

#[test]
fn a_joining_replicas_first_frames_are_not_dropped_behind_its_layout() {
    // The host of a joining replica sends the chosen layout to a node and then, on the
    // same link, the replica's first relayed frames. The receiver must judge "is this
    // the replica's host?" by the layout as of every message before it, and route its
    // answer by the layout that message produced: never drop the frames and wait for a
    // resend. Here this test is n1 (the host; a fake peer), n2 a real node.
    let n1_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let n1_address = n1_listener.local_addr().expect("address").to_string();
    let ports = common::plan(1)[0];
    let dir = tempfile::tempdir().expect("tempdir");
    let n2_ws = format!("127.0.0.1:{}", ports.ws);
    let mut n2 = NodeProc::new(
        2,
        ports,
        dir.path().join("n2"),
        &["--member", &format!("n1@{n1_address},n2@{n2_ws}")],
    );
    n2.start();
    n2.wait_healthy();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        n1_listener.set_nonblocking(true).expect("nonblocking");
        let listener = tokio::net::TcpListener::from_std(n1_listener).expect("listener");
        let mut inbox = accept_as(listener, NodeId(1));
        let mut link = PeerLink::dial(&n2_ws, NodeId(1), NodeId(2), &n1_address).await;
        // n2's own history, then the change adding the replica (at relay:1) on top.
        link.send(&PeerMessage::LayoutPull { epoch: 0 }).await;
        let history = wait_for(
            &mut inbox,
            Duration::from_secs(10),
            |_, message| match message {
                PeerMessage::Layout(report) => Some(report.history),
                _ => None,
            },
        )
        .await
        .expect("n2 sends its layout");
        // n1 proposes the change and n2 votes for it (Paxos among {n1, n2}).
        let spec = NodeSpec::new(REPLICA.0, "browser", 1).with_address("relay:1");
        let layout = history.committed().with_node(spec).expect("with replica");
        let version = layout.version();
        let ballot = Ballot {
            round: 1,
            node: NodeId(1),
        };
        link.send(&PeerMessage::LayoutPrepare { version, ballot })
            .await;
        let promised = wait_for(&mut inbox, Duration::from_secs(5), |_, message| {
            matches!(message, PeerMessage::LayoutPromise { .. }).then_some(())
        });
        assert!(promised.await.is_some(), "n2 promises");
        link.send(&PeerMessage::LayoutAccept {
            version,
            ballot,
            layout: layout.clone(),
        })
        .await;
        let accepted = wait_for(&mut inbox, Duration::from_secs(5), |_, message| {
            matches!(message, PeerMessage::LayoutAccepted { .. }).then_some(())
        });
        assert!(accepted.await.is_some(), "n2 accepts");
        let mut next = history.clone();
        next.begin(layout.clone()).expect("begin");
        let pull = protocol::encode(&PeerMessage::SyncPull {
            epoch: next.epoch(),
            cursor: None,
        })
        .expect("encodes");
        // Back to back, as a host forwards them: the chosen change, then the replica's
        // first frame.
        link.send(&PeerMessage::Layout(Box::new(LayoutReport {
            history: next.clone(),
            vote: Some((version, ballot, layout)),
        })))
        .await;
        link.send(&PeerMessage::Relayed {
            from: REPLICA,
            to: NodeId(2),
            frame: pull,
        })
        .await;
        // No resend comes (this replica is the test): the first pull must be answered.
        let page = wait_for(
            &mut inbox,
            Duration::from_secs(5),
            |_, message| match message {
                PeerMessage::Relayed { from, to, frame } if from == NodeId(2) && to == REPLICA => {
                    protocol::decode_frame(&frame)
                        .unwrap_or_default()
                        .into_iter()
                        .find_map(|message| match message {
                            PeerMessage::SyncPage(page) => Some(page),
                            _ => None,
                        })
                }
                _ => None,
            },
        )
        .await;
        let page = page.unwrap_or_else(|| {
            panic!(
                "n2 never answered the replica's first pull; log:\n{}",
                n2.log()
            )
        });
        assert_eq!(page.epoch, next.epoch());
        assert!(!n2.log().contains("not its host"), "{}", n2.log());
    });
}

#[test]
fn a_replica_cannot_rewrite_the_ring() {
    // Anyone with the client token can attach a replica. Neither a fresh id nor a
    // replica that is a member may get a forged layout adopted: a layout is learned
    // only from a majority of the members that chose it.
    let cluster = Cluster::start_seeded(3, &[]);
    let host = cluster.nodes[0].ws.clone();
    let before: Vec<u64> = cluster.nodes.iter().map(layout_version).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let n1 = cluster.nodes[0].ws.clone();
        let forged = |version: u64| {
            let spec = NodeSpec::new(1, "default", 1).with_address(n1.clone());
            let layout = RingLayout::from_parts(version, 3, 512, [spec]).expect("layout");
            PeerMessage::Layout(Box::new(LayoutReport {
                history: LayoutHistory::new(layout),
                vote: None,
            }))
        };
        // A fresh id, attached only to say this.
        let (mut intruder, _) = attach(&host, NodeId(77)).await.expect("attach");
        for to in [1, 2, 3] {
            send_as_replica(&mut intruder, NodeId(to), &forged(1_000)).await;
        }
        // A replica that is a member, as itself.
        let mut replica = join_replica(&host, REPLICA, 4).await;
        // The join is done once the member answering it committed; the others commit
        // it as the claims reach them. Wait for that first, so that what follows
        // compares only the forgeries' effect.
        let settle_deadline = Instant::now() + Duration::from_secs(10);
        let mut joined: Vec<u64> = cluster.nodes.iter().map(layout_version).collect();
        while joined.iter().any(|v| *v != joined[0]) && Instant::now() < settle_deadline {
            replica.run_for(100).await;
            joined = cluster.nodes.iter().map(layout_version).collect();
        }
        for to in [1, 2, 3] {
            send_as_replica(&mut replica.ws, NodeId(to), &forged(2_000)).await;
        }
        replica.run_for(2_000).await;
        let after: Vec<u64> = cluster.nodes.iter().map(layout_version).collect();
        assert_eq!(
            after, joined,
            "layout versions before the forgeries {before:?}"
        );
        assert!(after.iter().all(|v| *v < 1_000), "{after:?}");
        // And the ring still works through the replica.
        assert_eq!(
            replica.call(put("after-forgery", "ok")).await,
            ClientReply::Done
        );
    });
}

#[test]
fn a_bound_replica_attaches_only_with_its_secret_and_can_move_to_another_host() {
    let mut cluster = Cluster::start_seeded(3, &[]);
    let n1 = cluster.nodes[0].ws.clone();
    let n2 = cluster.nodes[1].ws.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut replica = join_replica(&n1, REPLICA, 4).await;
        let bound = replica
            .node
            .status()
            .layout
            .node(REPLICA)
            .cloned()
            .expect("member");
        assert!(bound.identity.is_some(), "{bound:?}");
        assert_eq!(replica.call(put("homed", "at n1")).await, ClientReply::Done);
        // The replica goes away; its id is released at once (the connection closed).
        let _ = replica.ws.close(None).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Another client-token holder cannot take the id, here or at another host.
        for host in [&n1, &n2] {
            let refused = attach_with(host, REPLICA, b"not the secret").await;
            assert!(
                matches!(&refused, Err(reason) if reason.contains("identity secret")),
                "{refused:?}"
            );
        }
        // Its host gone for good, the replica re-attaches to n2 with its secret and
        // asks n2 to move it there.
        cluster.nodes[0].kill9();
        let secret = replica.node.identity_secret().to_vec();
        let (ws, address) = attach_with(&n2, REPLICA, &secret).await.expect("re-attach");
        assert_eq!(address, "relay:2");
        replica.ws = ws;
        let mut admin = Client::connect(&n2, &Default::default())
            .await
            .expect("client");
        let rehome = AdminRequest::Rehome {
            id: REPLICA,
            address: address.clone(),
            secret: b"wrong".to_vec(),
        };
        let refused = admin
            .request(ClientRequest::Admin(rehome))
            .await
            .expect("reply");
        assert!(matches!(refused, ClientReply::Error(_)), "{refused:?}");
        let rehome = AdminRequest::Rehome {
            id: REPLICA,
            address: address.clone(),
            secret,
        };
        let mut moved = false;
        for _ in 0..40 {
            // The replica is an acceptor of the change: it runs while n2 proposes.
            let (reply, ()) = tokio::join!(
                admin.request(ClientRequest::Admin(rehome.clone())),
                replica.run_for(1_500)
            );
            let reply = reply.expect("reply");
            let spec = replica.node.status().layout.node(REPLICA).cloned();
            if reply == ClientReply::Done && spec.is_some_and(|s| s.address == address) {
                moved = true;
                break;
            }
        }
        assert!(moved, "{:?}", replica.node.status().membership);
        replica.run_for(1_000).await;
        assert_eq!(
            replica.call(get("homed")).await,
            ClientReply::Value(Some(b"at n1".to_vec()))
        );
        assert_eq!(replica.call(put("homed", "at n2")).await, ClientReply::Done);
        assert_eq!(
            cluster.nodes[2].resp().call(&["GET", "homed"]),
            Value::bulk("at n2")
        );
    });
}

#[test]
fn the_host_gives_a_replica_without_an_id_a_unique_one() {
    let cluster = Cluster::start_seeded(1, &[]);
    let host = cluster.nodes[0].ws.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut ids = Vec::new();
        for _ in 0..2 {
            let tcp = tokio::net::TcpStream::connect(&host)
                .await
                .expect("connect");
            let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{host}/replica"), tcp)
                .await
                .expect("websocket");
            let hello = wire::encode(&ReplicaUp::Hello {
                token: None,
                id: None,
                secret: b"s".to_vec(),
            })
            .expect("encodes");
            ws.send(Message::Binary(hello.into())).await.expect("send");
            let Some(Ok(Message::Binary(bytes))) = ws.next().await else {
                panic!("no answer");
            };
            match wire::decode::<ReplicaDown>(&bytes).expect("decodes") {
                ReplicaDown::Welcome { id, .. } => ids.push((id, ws)),
                other => panic!("{other:?}"),
            }
        }
        assert_ne!(ids[0].0, ids[1].0);
        for (id, _) in &ids {
            assert!(id.0 >= 1 << 32 && id.0 < 1 << 53, "{id}");
        }
    });
}

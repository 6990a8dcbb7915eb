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
use ringkv_core::ring::{NodeId, NodeSpec};
use ringkv_core::storage::blockstore::MemoryStore;
use ringkv_core::storage::lsm::{LsmEngine, LsmOptions};
use tokio_tungstenite::tungstenite::Message;

const REPLICA: NodeId = NodeId(50);

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn attach(host: &str, id: NodeId) -> Result<(Ws, String), String> {
    let tcp = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| e.to_string())?;
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{host}/replica"), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let hello = wire::encode(&ReplicaUp::Hello { token: None, id }).map_err(|e| e.to_string())?;
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
                            if let Ok(message) = protocol::decode(&frame) {
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

        let (ws, address) = attach(&host, REPLICA).await.expect("attach");
        assert_eq!(address, "relay:1");
        // A second session for the same id is refused while the first is attached.
        assert!(attach(&host, REPLICA).await.is_err());
        let spec = NodeSpec::new(REPLICA.0, "browser", 1).with_address(address);
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
                PeerMessage::Layout(history) => Some(history),
                _ => None,
            },
        )
        .await
        .expect("n2 sends its layout");
        let mut next = history.clone();
        let spec = NodeSpec::new(REPLICA.0, "browser", 1).with_address("relay:1");
        next.begin(history.committed().with_node(spec).expect("with replica"))
            .expect("begin");
        let pull = protocol::encode(&PeerMessage::SyncPull {
            epoch: next.epoch(),
            cursor: None,
        })
        .expect("encodes");
        // Back to back, as a host forwards them.
        link.send(&PeerMessage::Layout(next.clone())).await;
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
                    match protocol::decode(&frame) {
                        Ok(PeerMessage::SyncPage(page)) => Some(page),
                        _ => None,
                    }
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

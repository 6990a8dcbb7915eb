//! Fail-stop under the real node thread and committer: a core `Node` on an engine over
//! `FaultStore`, wrapped in `GroupCommit`, run by `node_host::spawn`; the test speaks for
//! peers 2 and 3 and captures what leaves through `Outbound`. After a failed sync nothing
//! may leave: not the vote a resent `LayoutAccept` would repeat from memory, not a tag
//! issued under a lease that never became durable, not a resent `Write`'s ack or a
//! `Read` answered from the buffered value. A restart on the crash image recovers from
//! durable state only. Each scenario runs on both engines (redb, unlike the LSM engine,
//! keeps serving reads of commits that never became durable).

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringkv_core::node::{
    ClientError, ClientReply, ClientRequest, Consistency, Node, NodeConfig, OpId, PeerMessage,
};
use ringkv_core::protocol::Ballot;
use ringkv_core::ring::{NodeId, NodeSpec, RingLayout};
use ringkv_core::storage::blockstore::FaultStore;
use ringkv_core::storage::lsm::{LsmEngine, LsmOptions};
use ringkv_core::storage::redb_engine::RedbEngine;
use ringkv_core::storage::{BlockStore, Engine};
use ringkv_core::versioning::Tag;

use super::super::group_commit::GroupCommit;
use super::super::metrics::Metrics;
use super::super::node_host::{self, Clock, NodeHandle, Outbound, TransportHooks};

const ME: NodeId = NodeId(1);
const PEER: NodeId = NodeId(2);
/// How long "nothing leaves" is watched for: gossip alone goes out every 100 ms.
const QUIET: Duration = Duration::from_millis(600);
const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
enum Kind {
    Lsm,
    Redb,
}

const KINDS: [Kind; 2] = [Kind::Lsm, Kind::Redb];

struct Capture(Sender<(NodeId, PeerMessage)>);

impl Outbound for Capture {
    fn send(&mut self, to: NodeId, message: &PeerMessage) {
        // The test may have stopped listening; nothing to do then.
        let _ = self.0.send((to, message.clone()));
    }
}

/// One node of a 3-member cluster (every key on all three) whose peers are the test.
struct Harness {
    kind: Kind,
    store: FaultStore,
    handle: NodeHandle,
    thread: std::thread::JoinHandle<()>,
    sent: Receiver<(NodeId, PeerMessage)>,
    metrics: Arc<Metrics>,
    epoch: u64,
    layout: RingLayout,
    runtime: tokio::runtime::Runtime,
}

impl Harness {
    fn open(kind: Kind, store: FaultStore) -> Harness {
        let blocks: Arc<dyn BlockStore> = Arc::new(store.clone());
        let engine: Arc<dyn Engine> = match kind {
            Kind::Lsm => Arc::new(LsmEngine::open(blocks, LsmOptions::default()).expect("lsm")),
            Kind::Redb => Arc::new(RedbEngine::open_store(blocks, "ringkv.redb").expect("redb")),
        };
        let commit = Arc::new(GroupCommit::new(engine));
        let members: Vec<NodeSpec> = (1..=3)
            .map(|id| NodeSpec::new(id, format!("z{id}"), 1))
            .collect();
        let mut config = NodeConfig::for_member(&members[0], members.clone());
        // The test answers for the peers only when it means to: they must never be
        // suspected meanwhile, and phases must not time out or resend within a test.
        config.suspect_after_ms = 600_000;
        config.dead_after_ms = 1_200_000;
        config.request_timeout_ms = 60_000;
        config.anti_entropy_interval_ms = 0;
        let clock = Clock::start();
        let node = Node::open(config, commit.clone(), 7, clock.now_ms()).expect("node opens");
        commit.sync().expect("opening is durable");
        let epoch = node.layout_history().epoch();
        let layout = node.layout_history().committed().clone();
        let (tx, sent) = channel();
        let metrics = Arc::new(Metrics::default());
        let hooks = TransportHooks {
            observe: Box::new(|_| {}),
            forward: Box::new(|_, _, _| false),
        };
        let (handle, thread) = node_host::spawn(
            node,
            commit.clone(),
            commit,
            clock,
            Capture(tx),
            hooks,
            metrics.clone(),
        )
        .expect("node thread starts");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        Harness {
            kind,
            store,
            handle,
            thread,
            sent,
            metrics,
            epoch,
            layout,
            runtime,
        }
    }

    /// Stops the node thread (a power cut: a failed node writes nothing more) and
    /// returns its disk; `crash_image(seed)` of it is what a reboot finds (`seed` 0:
    /// exactly the synced bytes).
    fn stop(self) -> (Kind, FaultStore) {
        // Flushing at shutdown fails on a failed node; that is expected.
        let _ = self.runtime.block_on(self.handle.shutdown());
        self.thread.join().expect("node thread");
        (self.kind, self.store)
    }

    fn deliver(&self, from: NodeId, message: PeerMessage) {
        assert!(self.handle.deliver(from, message), "peer queue full");
    }

    fn request(&self, request: ClientRequest) -> tokio::task::JoinHandle<ClientReply> {
        let handle = self.handle.clone();
        self.runtime
            .spawn(async move { handle.request(request).await.expect("answered") })
    }

    fn reply(&self, pending: tokio::task::JoinHandle<ClientReply>) -> ClientReply {
        self.runtime
            .block_on(async { tokio::time::timeout(WAIT, pending).await })
            .expect("a reply in time")
            .expect("request task")
    }

    /// The next message to `to` that `wanted` picks (gossip and others are skipped).
    fn expect_send(&self, to: NodeId, wanted: impl Fn(&PeerMessage) -> bool) -> PeerMessage {
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.sent.recv_timeout(left) {
                Ok((dest, message)) if dest == to && wanted(&message) => return message,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("{:?}: no such message to {to} within {WAIT:?}", self.kind);
    }

    fn wait_failed(&self) {
        let deadline = Instant::now() + WAIT;
        while self.handle.storage_failure().is_none() {
            assert!(
                Instant::now() < deadline,
                "{:?}: storage never failed",
                self.kind
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Peer inputs the node thread has taken (handled or dropped).
    fn inputs_taken(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        self.metrics.node_inputs.load(Relaxed) + self.metrics.peer_receives_dropped.load(Relaxed)
    }

    fn wait_inputs_taken(&self, at_least: u64) {
        let deadline = Instant::now() + WAIT;
        while self.inputs_taken() < at_least {
            assert!(
                Instant::now() < deadline,
                "{:?}: inputs not taken",
                self.kind
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Everything sent so far, discarded; returns it.
    fn drain(&self) -> Vec<(NodeId, PeerMessage)> {
        self.sent.try_iter().collect()
    }

    /// What leaves within `QUIET`, while the test plays peers 2 and 3 as a healthy
    /// cluster would (tag reads answered, writes acknowledged), so that a leak turns
    /// into everything it could become.
    fn leaks(&self) -> Vec<(NodeId, PeerMessage)> {
        let mut leaked = Vec::new();
        let deadline = Instant::now() + QUIET;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok((to, message)) = self.sent.recv_timeout(left) else {
                break;
            };
            match &message {
                PeerMessage::ReadTag { req, .. } if to != ME => self.deliver(
                    to,
                    PeerMessage::ReadTagAck {
                        req: *req,
                        tag: Tag::ZERO,
                    },
                ),
                PeerMessage::Write { req, .. } if to != ME => {
                    self.deliver(to, PeerMessage::WriteAck { req: *req })
                }
                _ => {}
            }
            leaked.push((to, message));
        }
        leaked
    }
}

fn put(key: &str, value: &str) -> ClientRequest {
    ClientRequest::Put {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        consistency: Consistency::Linearizable,
    }
}

fn names(messages: &[(NodeId, PeerMessage)]) -> Vec<String> {
    messages
        .iter()
        .map(|(to, m)| format!("{} to {to}", m.kind()))
        .collect()
}

fn is_storage_failure(reply: &ClientReply) -> bool {
    matches!(
        reply,
        ClientReply::Error(
            ClientError::Unavailable { reason } | ClientError::Indeterminate { reason }
        ) if reason.contains("storage failed")
    )
}

/// An acceptor whose vote's sync failed must never say "accepted": not in the failing
/// turn, and not when the proposer resends the accept and the vote is still in memory
/// (a majority that counted it could choose a layout the restarted acceptor no longer
/// knows it voted for: two layouts for one version).
#[test]
fn a_vote_whose_sync_failed_is_never_announced() {
    for kind in KINDS {
        let h = Harness::open(kind, FaultStore::new());
        let version = h.epoch + 1;
        let ballot = Ballot {
            round: 1,
            node: PEER,
        };
        h.deliver(PEER, PeerMessage::LayoutPrepare { version, ballot });
        h.expect_send(PEER, |m| matches!(m, PeerMessage::LayoutPromise { .. }));
        let layout = h
            .layout
            .with_node(NodeSpec::new(4, "z4", 1))
            .expect("next layout");
        let accept = PeerMessage::LayoutAccept {
            version,
            ballot,
            layout: layout.clone(),
        };
        h.store.fail_next_sync();
        h.deliver(PEER, accept.clone());
        h.wait_failed();
        let before = h.drain();
        assert!(
            !before
                .iter()
                .any(|(_, m)| matches!(m, PeerMessage::LayoutAccepted { .. })),
            "{kind:?}: the failed turn's vote left: {:?}",
            names(&before)
        );
        let taken = h.inputs_taken();
        h.deliver(PEER, accept);
        h.wait_inputs_taken(taken + 1);
        let leaked = h.leaks();
        assert!(
            leaked.is_empty(),
            "{kind:?}: sent after the failed sync: {:?}",
            names(&leaked)
        );

        // Rebooted on what the disk kept: the promise (synced) survives; the vote is
        // gone (seed 0), or kept whole by a torn-tail image, which is as good as it
        // never having been announced either way.
        let (kind, disk) = h.stop();
        for seed in [0, 9] {
            let h = Harness::open(kind, disk.crash_image(seed));
            assert_eq!(h.handle.storage_failure(), None);
            let higher = Ballot {
                round: 2,
                node: PEER,
            };
            h.deliver(
                PEER,
                PeerMessage::LayoutPrepare {
                    version,
                    ballot: higher,
                },
            );
            let PeerMessage::LayoutPromise { accepted, .. } =
                h.expect_send(PEER, |m| matches!(m, PeerMessage::LayoutPromise { .. }))
            else {
                unreachable!("picked a promise");
            };
            match seed {
                0 => assert_eq!(accepted, None, "{kind:?}: an unsynced vote survived"),
                _ => assert!(
                    accepted.is_none() || accepted == Some((ballot, layout.clone())),
                    "{kind:?}: recovered a vote nobody cast: {accepted:?}"
                ),
            }
            h.stop();
        }
    }
}

/// A tag-lease raise whose sync failed: the node must not go on issuing tags up to the
/// lease it holds only in memory (after a restart it would issue them again, for other
/// values: one tag, two values). After the failure no request's messages leave and the
/// client hears a clear "storage failed" error, never `Done`.
#[test]
fn tags_under_a_lease_that_never_became_durable_never_leave() {
    const HUGE: u64 = 1 << 40;
    for kind in KINDS {
        let h = Harness::open(kind, FaultStore::new());
        let first = h.request(put("lease-1", "v1"));
        let PeerMessage::ReadTag { req, .. } =
            h.expect_send(PEER, |m| matches!(m, PeerMessage::ReadTag { .. }))
        else {
            unreachable!("picked a tag read");
        };
        // A tag far above the lease: issuing the next one persists a new lease first,
        // and that sync fails.
        h.store.fail_next_sync();
        h.deliver(
            PEER,
            PeerMessage::ReadTagAck {
                req,
                tag: Tag {
                    counter: HUGE,
                    node: PEER,
                },
            },
        );
        h.wait_failed();
        let before = h.drain();
        assert!(
            !before
                .iter()
                .any(|(_, m)| matches!(m, PeerMessage::Write { .. })),
            "{kind:?}: the failed turn's writes left: {:?}",
            names(&before)
        );

        let second = h.request(put("lease-2", "v2"));
        let leaked = h.leaks();
        assert!(
            leaked.is_empty(),
            "{kind:?}: sent after the failed sync: {:?}",
            names(&leaked)
        );
        let reply = h.reply(second);
        assert!(is_storage_failure(&reply), "{kind:?}: {reply:?}");
        // The put whose lease sync failed is answered too, and not with `Done`.
        let reply = h.reply(first);
        assert!(is_storage_failure(&reply), "{kind:?}: {reply:?}");

        // Rebooted: the lease is the durable one, and the node serves again.
        let (kind, disk) = h.stop();
        let h = Harness::open(kind, disk.crash_image(0));
        let third = h.request(put("lease-3", "v3"));
        let PeerMessage::ReadTag { req, .. } =
            h.expect_send(PEER, |m| matches!(m, PeerMessage::ReadTag { .. }))
        else {
            unreachable!("picked a tag read");
        };
        h.deliver(
            PEER,
            PeerMessage::ReadTagAck {
                req,
                tag: Tag::ZERO,
            },
        );
        let PeerMessage::Write { req, tag, .. } =
            h.expect_send(PEER, |m| matches!(m, PeerMessage::Write { .. }))
        else {
            unreachable!("picked a write");
        };
        assert!(
            tag.counter < HUGE,
            "{kind:?}: the lost lease survived: {tag:?}"
        );
        h.deliver(PEER, PeerMessage::WriteAck { req });
        assert_eq!(h.reply(third), ClientReply::Done, "{kind:?}");
        h.stop();
    }
}

/// A replica write whose sync failed: neither a resent `Write` (the stored tag, read
/// from memory, already covers it) nor a `Read` (the buffered value) may be answered.
#[test]
fn writes_whose_sync_failed_are_neither_acknowledged_nor_read() {
    for kind in KINDS {
        let h = Harness::open(kind, FaultStore::new());
        let op = |seq| OpId {
            coordinator: PEER,
            incarnation: 1,
            seq,
        };
        let write = PeerMessage::Write {
            req: op(1),
            epoch: h.epoch,
            key: b"k".to_vec(),
            tag: Tag {
                counter: 5,
                node: PEER,
            },
            value: Some(b"lost".to_vec()),
        };
        h.store.fail_next_sync();
        h.deliver(PEER, write.clone());
        h.wait_failed();
        let before = h.drain();
        assert!(
            !before
                .iter()
                .any(|(_, m)| matches!(m, PeerMessage::WriteAck { .. })),
            "{kind:?}: the failed turn's ack left: {:?}",
            names(&before)
        );
        let taken = h.inputs_taken();
        h.deliver(PEER, write);
        let epoch = h.epoch;
        let read = |seq| PeerMessage::Read {
            req: op(seq),
            epoch,
            key: b"k".to_vec(),
        };
        h.deliver(PEER, read(2));
        h.wait_inputs_taken(taken + 2);
        let leaked = h.leaks();
        assert!(
            leaked.is_empty(),
            "{kind:?}: sent after the failed sync: {:?}",
            names(&leaked)
        );

        // Rebooted on the synced bytes: the write never happened here.
        let (kind, disk) = h.stop();
        let h = Harness::open(kind, disk.crash_image(0));
        h.deliver(PEER, read(3));
        let ack = h.expect_send(PEER, |m| matches!(m, PeerMessage::ReadAck { .. }));
        assert_eq!(
            ack,
            PeerMessage::ReadAck {
                req: op(3),
                tag: Tag::ZERO,
                value: None
            },
            "{kind:?}"
        );
        h.stop();
    }
}

//! The in-test cluster harness shared by the node tests: 3–5 real `Node`s over
//! `MemoryStore` + `LsmEngine`, a message queue with optional loss, duplication,
//! reordering and replay, per-node clock skew, and one manual clock.
#![allow(dead_code)] // each test file uses a different part of it

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use ringkv_core::node::{
    ClientReply, ClientRequest, Consistency, Input, Node, NodeConfig, Output, PeerMessage,
    RequestId, Stored,
};
use ringkv_core::rand::SplitMix64;
use ringkv_core::ring::{NodeId, NodeSpec};
use ringkv_core::storage::blockstore::{BlockStore, MemoryStore};
use ringkv_core::storage::lsm::{LsmEngine, LsmOptions};
use ringkv_core::storage::Engine;
use ringkv_core::versioning::Tag;

pub type Filter = Box<dyn FnMut(NodeId, NodeId, &PeerMessage) -> bool>;

/// A linearizable put of `key` (a test file may define its own `put` instead).
pub fn put(key: &str, value: &str) -> ClientRequest {
    ClientRequest::Put {
        key: key.into(),
        value: value.into(),
        consistency: Consistency::Linearizable,
    }
}

/// A linearizable get of `key`.
pub fn get(key: &str) -> ClientRequest {
    ClientRequest::Get {
        key: key.into(),
        consistency: Consistency::Linearizable,
    }
}

/// A linearizable delete of `key`.
pub fn delete(key: &str) -> ClientRequest {
    ClientRequest::Delete {
        key: key.into(),
        consistency: Consistency::Linearizable,
    }
}

/// Message faults applied on delivery.
#[derive(Default, Clone, Copy)]
pub struct Chaos {
    /// Percent of deliveries that also leave a copy in the network.
    pub duplicate_percent: u64,
    /// Deliver a random queued message instead of the oldest.
    pub reorder: bool,
    /// Percent of steps that re-inject a message delivered at any earlier time.
    pub replay_percent: u64,
    /// Percent of messages lost.
    pub loss_percent: u64,
}

pub struct Cluster {
    pub specs: Vec<NodeSpec>,
    pub stores: Vec<Arc<dyn BlockStore>>,
    pub engines: Vec<Arc<LsmEngine>>,
    pub nodes: Vec<Option<Node>>,
    /// Per-node clock offset: nodes only ever see their own (skewed) clock.
    pub skew_ms: Vec<u64>,
    pub now_ms: u64,
    pub net: VecDeque<(NodeId, NodeId, PeerMessage)>,
    pub delivered: Vec<(NodeId, NodeId, PeerMessage)>,
    pub replies: BTreeMap<RequestId, ClientReply>,
    pub next_request: u64,
    /// Nodes cut off: everything to and from them is dropped.
    pub blocked: BTreeSet<NodeId>,
    /// Extra drop rule: `true` drops the message.
    pub filter: Option<Filter>,
    /// Adjusts every node's config (see [`Cluster::with`]).
    pub tweak: fn(&mut NodeConfig),
    pub chaos: Chaos,
    pub rng: SplitMix64,
    /// Nodes started with no member list (waiting to be added by an admin `Join`).
    pub joiners: BTreeSet<usize>,
}

pub fn nid(i: usize) -> NodeId {
    NodeId(i as u64 + 1)
}

pub fn index(id: NodeId) -> usize {
    id.0 as usize - 1
}

impl Cluster {
    pub fn new(n: usize) -> Self {
        Self::with(n, |_| {})
    }

    /// `n` nodes whose configs `tweak` adjusts.
    pub fn with(n: usize, tweak: fn(&mut NodeConfig)) -> Self {
        let specs: Vec<NodeSpec> = (1..=n as u64)
            .map(|i| NodeSpec::new(i, format!("zone-{i}"), 1))
            .collect();
        let mut cluster = Cluster {
            specs,
            stores: Vec::new(),
            engines: Vec::new(),
            nodes: Vec::new(),
            skew_ms: (0..n as u64).map(|i| i * 7_919).collect(),
            now_ms: 1_000,
            net: VecDeque::new(),
            delivered: Vec::new(),
            replies: BTreeMap::new(),
            next_request: 0,
            blocked: BTreeSet::new(),
            filter: None,
            tweak,
            chaos: Chaos::default(),
            rng: SplitMix64::new(42),
            joiners: BTreeSet::new(),
        };
        for i in 0..n {
            let store: Arc<dyn BlockStore> = Arc::new(MemoryStore::new());
            cluster.stores.push(store.clone());
            let engine = Arc::new(LsmEngine::open(store, LsmOptions::tiny()).expect("engine"));
            cluster.engines.push(engine);
            cluster.nodes.push(None);
            cluster.start(i);
        }
        cluster
    }

    /// Starts one more node, with no member list: it waits to be added (admin `Join`
    /// at a member with [`Cluster::spec`]). Returns its index.
    pub fn add_joiner(&mut self) -> usize {
        let i = self.nodes.len();
        let id = i as u64 + 1;
        self.specs.push(NodeSpec::new(id, format!("zone-{id}"), 1));
        self.skew_ms.push(id * 7_919);
        let store: Arc<dyn BlockStore> = Arc::new(MemoryStore::new());
        self.stores.push(store.clone());
        let engine = Arc::new(LsmEngine::open(store, LsmOptions::tiny()).expect("engine"));
        self.engines.push(engine);
        self.nodes.push(None);
        self.joiners.insert(i);
        self.start(i);
        i
    }

    pub fn config(&self, i: usize) -> NodeConfig {
        let members = if self.joiners.contains(&i) {
            Vec::new()
        } else {
            self.specs
                .iter()
                .enumerate()
                .filter(|(j, _)| !self.joiners.contains(j))
                .map(|(_, spec)| spec.clone())
                .collect()
        };
        let mut config = NodeConfig::for_member(&self.specs[i], members);
        (self.tweak)(&mut config);
        config
    }

    pub fn local_ms(&self, i: usize) -> u64 {
        self.now_ms + self.skew_ms[i]
    }

    pub fn start(&mut self, i: usize) {
        let engine: Arc<dyn Engine> = self.engines[i].clone();
        let node = Node::open(self.config(i), engine, i as u64, self.local_ms(i)).expect("open");
        self.nodes[i] = Some(node);
    }

    /// Drops the node and its engine (in-memory state gone), as a process crash would.
    pub fn crash(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    /// Reopens engine and node on `store` (the same one, or a crash image).
    pub fn restart_on(&mut self, i: usize, store: Arc<dyn BlockStore>) {
        self.stores[i] = store.clone();
        self.engines[i] = Arc::new(LsmEngine::open(store, LsmOptions::tiny()).expect("reopen"));
        self.start(i);
    }

    /// Drops node and engine and reopens both on the same store (a clean restart).
    pub fn restart(&mut self, i: usize) {
        self.crash(i);
        self.restart_on(i, self.stores[i].clone());
    }

    /// Lets in-flight messages land, without moving time.
    pub fn settle(&mut self) {
        while self.step() {}
    }

    /// Indexes of the nodes that are up and members (`Role::Member`).
    pub fn members_up(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| {
                self.nodes[*i]
                    .as_ref()
                    .is_some_and(|n| n.status().membership.role == ringkv_core::node::Role::Member)
            })
            .collect()
    }

    pub fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().expect("node is up")
    }

    pub fn request(&mut self, at: usize, request: ClientRequest) -> RequestId {
        self.next_request += 1;
        let id = RequestId(self.next_request);
        let now = self.local_ms(at);
        if let Some(node) = self.nodes[at].as_mut() {
            node.handle(now, Input::Client { id, request });
        }
        self.collect(at);
        id
    }

    pub fn collect(&mut self, i: usize) {
        let Some(node) = self.nodes[i].as_mut() else {
            return;
        };
        while let Some(output) = node.poll_output() {
            match output {
                Output::Send { to, message } => {
                    assert_ne!(to, nid(i), "a node never sends to itself");
                    self.net.push_back((nid(i), to, message));
                }
                Output::Reply { id, reply } => {
                    assert!(
                        self.replies.insert(id, reply).is_none(),
                        "two replies to {id:?}"
                    );
                }
            }
        }
    }

    /// Delivers one message; false if the network is empty.
    pub fn step(&mut self) -> bool {
        if self.chaos.replay_percent > 0
            && !self.delivered.is_empty()
            && self.rng.chance(self.chaos.replay_percent)
        {
            let old = self.delivered[self.rng.below(self.delivered.len() as u64) as usize].clone();
            self.net.push_back(old);
        }
        let at = if self.chaos.reorder {
            self.rng.below(self.net.len() as u64) as usize
        } else {
            0
        };
        let Some((from, to, message)) = self.net.remove(at) else {
            return false;
        };
        if self.blocked.contains(&from) || self.blocked.contains(&to) {
            return true;
        }
        if self.chaos.loss_percent > 0 && self.rng.chance(self.chaos.loss_percent) {
            return true;
        }
        if let Some(filter) = self.filter.as_mut() {
            if filter(from, to, &message) {
                return true;
            }
        }
        if self.chaos.duplicate_percent > 0 && self.rng.chance(self.chaos.duplicate_percent) {
            self.net.push_back((from, to, message.clone()));
        }
        if self.chaos.replay_percent > 0 {
            self.delivered.push((from, to, message.clone()));
        }
        self.inject(from, index(to), message);
        true
    }

    /// Hands `message` to node `to` as if `from` had sent it.
    pub fn inject(&mut self, from: NodeId, to: usize, message: PeerMessage) {
        let now = self.local_ms(to);
        if let Some(node) = self.nodes[to].as_mut() {
            node.handle(now, Input::Peer { from, message });
        }
        self.collect(to);
    }

    /// Delivers the network in generations (every message in flight, then every
    /// message those caused, ...) until it is empty, at the current instant. Returns
    /// the generations: twice the round trips of the longest causal chain (the harness
    /// delivers instantly, so a chain that waits on no timer completes here).
    pub fn drain_generations(&mut self) -> u64 {
        let mut generations = 0;
        while !self.net.is_empty() {
            for _ in 0..self.net.len() {
                self.step();
            }
            generations += 1;
        }
        generations
    }

    /// `run_for` delivering in generations; the most generations any instant took.
    pub fn run_for_counting(&mut self, duration_ms: u64) -> u64 {
        let until_ms = self.now_ms + duration_ms;
        let mut most = 0;
        while self.now_ms < until_ms {
            most = most.max(self.drain_generations());
            self.advance();
        }
        most
    }

    /// Moves the clock to the earliest node timeout and ticks every node that is due.
    pub fn advance(&mut self) {
        let next_ms = (0..self.nodes.len())
            .filter_map(|i| {
                let local = self.nodes[i].as_ref()?.poll_timeout()?;
                Some(local.saturating_sub(self.skew_ms[i]))
            })
            .min()
            .expect("some node is up");
        self.now_ms = self.now_ms.max(next_ms);
        for i in 0..self.nodes.len() {
            let now = self.local_ms(i);
            let Some(node) = self.nodes[i].as_mut() else {
                continue;
            };
            if node.poll_timeout().is_some_and(|at| at <= now) {
                node.handle(now, Input::Tick);
                self.collect(i);
            }
        }
    }

    /// Runs until `id` has its reply (messages first, then time), at most `limit_ms`.
    pub fn wait(&mut self, id: RequestId, limit_ms: u64) -> ClientReply {
        let deadline_ms = self.now_ms + limit_ms;
        loop {
            if let Some(reply) = self.replies.remove(&id) {
                return reply;
            }
            if !self.step() {
                assert!(
                    self.now_ms <= deadline_ms,
                    "no reply to {id:?} within {limit_ms} ms"
                );
                self.advance();
            }
        }
    }

    pub fn call(&mut self, at: usize, request: ClientRequest) -> ClientReply {
        let id = self.request(at, request);
        self.wait(id, 10_000)
    }

    /// Lets time pass with the network running.
    pub fn run_for(&mut self, duration_ms: u64) {
        let until_ms = self.now_ms + duration_ms;
        while self.now_ms < until_ms {
            while self.step() {}
            self.advance();
        }
    }
}

/// Linearizable requests and direct reads of a replica's registers.
impl Cluster {
    /// The register replica `i` holds for `key`, read straight from its engine.
    pub fn stored(&self, i: usize, key: &[u8]) -> Option<(Tag, Option<Vec<u8>>)> {
        let mut engine_key = b"d/".to_vec();
        engine_key.extend_from_slice(key);
        let bytes = self.engines[i].get(&engine_key).expect("engine get")?;
        let stored = Stored::decode(&bytes).expect("record decodes");
        let (tag, value) = stored.register()?;
        Some((tag, value.map(<[u8]>::to_vec)))
    }

    /// A linearizable put through node `at`, which must succeed.
    pub fn put_ok(&mut self, at: usize, key: &[u8], value: &[u8]) {
        let request = ClientRequest::Put {
            key: key.to_vec(),
            value: value.to_vec(),
            consistency: Consistency::Linearizable,
        };
        assert_eq!(self.call(at, request), ClientReply::Done);
    }

    /// A linearizable delete through node `at`, which must succeed.
    pub fn delete_ok(&mut self, at: usize, key: &[u8]) {
        let request = ClientRequest::Delete {
            key: key.to_vec(),
            consistency: Consistency::Linearizable,
        };
        assert_eq!(self.call(at, request), ClientReply::Done);
    }

    /// A linearizable get through node `at`.
    pub fn get_linearizable(&mut self, at: usize, key: &[u8]) -> ClientReply {
        self.call(
            at,
            ClientRequest::Get {
                key: key.to_vec(),
                consistency: Consistency::Linearizable,
            },
        )
    }
}

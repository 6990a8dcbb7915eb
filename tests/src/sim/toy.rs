//! A small ABD register cluster behind the simulator's interface.
//!
//! It exists so the simulator (event loop, faults, clients, checking, convergence) is
//! exercised end to end before, and independently of, `ringkv_core::node`. It follows
//! the same protocol as the design (query a quorum of the key's N replicas, write with
//! a higher tag, reads write back) in the simplest form: disks are maps that are
//! durable at once, there is no failure detector, and a periodic push of every key to
//! its co-replicas stands in for anti-entropy.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

use super::api::{Hardware, Input, NodeIndex, Output, Reply, Request, RequestId, SimNode};
use super::error::SimError;

/// `(counter, write id)`: `(0, 0)` is "never written". The second part must be unique
/// per *write*, not per node: with `(counter, node)`, two concurrent puts coordinated by
/// the same node read the same maximum and pick equal tags for different values (the
/// simulator found exactly that in an earlier version of this toy). The request id is
/// random per boot and counts up, so it also differs across restarts.
type Tag = (u64, u64);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versioned {
    pub tag: Tag,
    pub value: Option<Vec<u8>>,
}

type Disk = Rc<RefCell<BTreeMap<Vec<u8>, Versioned>>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToyMsg {
    Query {
        rid: u64,
        key: Vec<u8>,
    },
    QueryReply {
        rid: u64,
        key: Vec<u8>,
        stored: Versioned,
    },
    Store {
        rid: u64,
        key: Vec<u8>,
        stored: Versioned,
    },
    StoreAck {
        rid: u64,
        key: Vec<u8>,
    },
    /// Anti-entropy push; no answer.
    Sync {
        key: Vec<u8>,
        stored: Versioned,
    },
}

impl ToyMsg {
    fn key(&self) -> &[u8] {
        match self {
            ToyMsg::Query { key, .. }
            | ToyMsg::QueryReply { key, .. }
            | ToyMsg::Store { key, .. }
            | ToyMsg::StoreAck { key, .. }
            | ToyMsg::Sync { key, .. } => key,
        }
    }
}

/// Replies are counted per replica: the network duplicates messages, and a duplicate
/// must not make a quorum.
enum Phase {
    Query(BTreeMap<NodeIndex, Versioned>),
    /// Writing a put's value, or a read's write-back; answer `result` on a quorum.
    Store {
        acks: BTreeSet<NodeIndex>,
        result: Reply,
    },
}

struct Pending {
    client: RequestId,
    request: Request,
    phase: Phase,
    deadline: u64,
}

pub struct ToyNode {
    me: NodeIndex,
    nodes: usize,
    replicas: usize,
    timeout_ms: u64,
    anti_entropy_ms: u64,
    next_anti_entropy: u64,
    disk: Disk,
    pending: BTreeMap<u64, Pending>,
    next_rid: u64,
    out: VecDeque<Output<ToyMsg>>,
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl ToyNode {
    fn preference(&self, key: &[u8]) -> Vec<NodeIndex> {
        let first = (fnv(key) % self.nodes as u64) as usize;
        (0..self.replicas)
            .map(|i| (first + i) % self.nodes)
            .collect()
    }

    fn quorum(&self) -> usize {
        self.replicas / 2 + 1
    }

    fn send_to_replicas(&mut self, key: &[u8], message: ToyMsg) {
        for to in self.preference(key) {
            let message = message.clone();
            self.out.push_back(Output::Send { to, message });
        }
    }

    fn store_locally(&self, key: &[u8], stored: &Versioned) {
        let mut disk = self.disk.borrow_mut();
        let current = disk.get(key).map_or((0, 0), |v| v.tag);
        if stored.tag > current {
            disk.insert(key.to_vec(), stored.clone());
        }
    }

    fn reply(&mut self, id: RequestId, reply: Reply) {
        self.out.push_back(Output::Reply { id, reply });
    }

    fn start_store(&mut self, rid: u64, stored: Versioned, result: Reply, now: u64) {
        let Some(p) = self.pending.get_mut(&rid) else {
            return;
        };
        let key = p.request.key().to_vec();
        p.phase = Phase::Store {
            acks: BTreeSet::new(),
            result,
        };
        p.deadline = now + self.timeout_ms;
        self.send_to_replicas(
            &key,
            ToyMsg::Store {
                rid,
                key: key.clone(),
                stored,
            },
        );
    }

    fn on_query_reply(&mut self, from: NodeIndex, rid: u64, stored: Versioned, now: u64) {
        let quorum = self.quorum();
        let Some(p) = self.pending.get_mut(&rid) else {
            return;
        };
        let Phase::Query(replies) = &mut p.phase else {
            return;
        };
        replies.insert(from, stored);
        if replies.len() < quorum {
            return;
        }
        let max = replies
            .values()
            .max_by_key(|v| v.tag)
            .cloned()
            .unwrap_or_default();
        let all_agree = replies.values().all(|v| v.tag == max.tag);
        match p.request.clone() {
            Request::Get { .. } if all_agree => {
                let client = p.client;
                self.pending.remove(&rid);
                self.reply(client, Reply::Value(max.value));
            }
            Request::Get { .. } => {
                let result = Reply::Value(max.value.clone());
                self.start_store(rid, max, result, now);
            }
            Request::Put { value, .. } => {
                let stored = Versioned {
                    tag: (max.tag.0 + 1, rid),
                    value: Some(value),
                };
                self.start_store(rid, stored, Reply::Done, now);
            }
            Request::Delete { .. } => {
                let stored = Versioned {
                    tag: (max.tag.0 + 1, rid),
                    value: None,
                };
                self.start_store(rid, stored, Reply::Done, now);
            }
            // Refused when received (see `handle`).
            Request::GetEventual { .. }
            | Request::PutEventual { .. }
            | Request::Scan { .. }
            | Request::Update { .. } => {}
        }
    }

    fn on_store_ack(&mut self, from: NodeIndex, rid: u64) {
        let quorum = self.quorum();
        let Some(p) = self.pending.get_mut(&rid) else {
            return;
        };
        let Phase::Store { acks, result, .. } = &mut p.phase else {
            return;
        };
        acks.insert(from);
        if acks.len() >= quorum {
            let (client, result) = (p.client, result.clone());
            self.pending.remove(&rid);
            self.reply(client, result);
        }
    }

    fn on_tick(&mut self, now: u64) {
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(&rid, _)| rid)
            .collect();
        for rid in expired {
            if let Some(p) = self.pending.remove(&rid) {
                // Nothing written yet → Unavailable; a put's write phase may have
                // reached some replicas → Indeterminate; a read's write-back only
                // spreads an existing value → Unavailable.
                let reply = match (&p.phase, &p.request) {
                    (Phase::Store { .. }, Request::Put { .. } | Request::Delete { .. }) => {
                        Reply::Indeterminate
                    }
                    _ => Reply::Unavailable,
                };
                self.reply(p.client, reply);
            }
        }
        if now >= self.next_anti_entropy {
            self.next_anti_entropy = now + self.anti_entropy_ms;
            let entries: Vec<(Vec<u8>, Versioned)> = self
                .disk
                .borrow()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (key, stored) in entries {
                for to in self.preference(&key).into_iter().filter(|&n| n != self.me) {
                    let message = ToyMsg::Sync {
                        key: key.clone(),
                        stored: stored.clone(),
                    };
                    self.out.push_back(Output::Send { to, message });
                }
            }
        }
    }
}

impl SimNode for ToyNode {
    type Message = ToyMsg;

    fn handle(&mut self, now: u64, input: Input<ToyMsg>) {
        match input {
            // The toy is a register store only: the set workload (eventual mode) does
            // not run against it (`supports_eventual` is false).
            Input::Client {
                id,
                request:
                    Request::GetEventual { .. }
                    | Request::PutEventual { .. }
                    | Request::Scan { .. }
                    | Request::Update { .. },
            } => {
                let reply =
                    Reply::Rejected("the toy has no eventual mode, scans or updates".into());
                self.out.push_back(Output::Reply { id, reply });
            }
            Input::Client { id, request } => {
                let rid = self.next_rid;
                self.next_rid = self.next_rid.wrapping_add(1);
                let key = request.key().to_vec();
                self.pending.insert(
                    rid,
                    Pending {
                        client: id,
                        request,
                        phase: Phase::Query(BTreeMap::new()),
                        deadline: now + self.timeout_ms,
                    },
                );
                self.send_to_replicas(
                    &key,
                    ToyMsg::Query {
                        rid,
                        key: key.clone(),
                    },
                );
            }
            Input::Peer { from, message } => match message {
                ToyMsg::Query { rid, key } => {
                    let stored = self.disk.borrow().get(&key).cloned().unwrap_or_default();
                    let message = ToyMsg::QueryReply { rid, key, stored };
                    self.out.push_back(Output::Send { to: from, message });
                }
                ToyMsg::QueryReply { rid, stored, .. } => {
                    self.on_query_reply(from, rid, stored, now);
                }
                ToyMsg::Store { rid, key, stored } => {
                    self.store_locally(&key, &stored);
                    let message = ToyMsg::StoreAck { rid, key };
                    self.out.push_back(Output::Send { to: from, message });
                }
                ToyMsg::StoreAck { rid, .. } => self.on_store_ack(from, rid),
                ToyMsg::Sync { key, stored } => self.store_locally(&key, &stored),
            },
            Input::Tick => self.on_tick(now),
            // The toy has static membership.
            Input::Admin { id, .. } => self.out.push_back(Output::Reply {
                id,
                reply: Reply::Rejected("no membership changes in the toy".into()),
            }),
        }
    }

    fn poll_output(&mut self) -> Option<Output<ToyMsg>> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<u64> {
        let requests = self.pending.values().map(|p| p.deadline).min();
        Some(requests.map_or(self.next_anti_entropy, |d| d.min(self.next_anti_entropy)))
    }
}

/// Disks of a toy cluster (`Rc`: the simulator is single-threaded).
pub struct ToyHardware {
    disks: Vec<Disk>,
    replicas: usize,
    timeout_ms: u64,
    anti_entropy_ms: u64,
    /// Power loss wipes the disk (a store that acknowledged unsynced writes): used to
    /// show the simulator reports lost acknowledged writes.
    forgetful: bool,
}

impl ToyHardware {
    pub fn new(nodes: usize, replicas: usize, timeout_ms: u64) -> Self {
        ToyHardware {
            disks: (0..nodes).map(|_| Disk::default()).collect(),
            replicas,
            timeout_ms,
            anti_entropy_ms: 500,
            forgetful: false,
        }
    }

    /// Disks that lose everything on power loss.
    pub fn forgetful(mut self) -> Self {
        self.forgetful = true;
        self
    }
}

impl Hardware for ToyHardware {
    type Node = ToyNode;

    fn nodes(&self) -> usize {
        self.disks.len()
    }

    fn replicas(&self) -> usize {
        self.replicas
    }

    fn boot(&mut self, index: NodeIndex, now_ms: u64, seed: u64) -> Result<ToyNode, SimError> {
        let disk = self.disks.get(index).cloned().ok_or(SimError::Open {
            node: index,
            time_ms: now_ms,
            reason: "no such node".into(),
        })?;
        Ok(ToyNode {
            me: index,
            nodes: self.disks.len(),
            replicas: self.replicas,
            timeout_ms: self.timeout_ms,
            anti_entropy_ms: self.anti_entropy_ms,
            // Desynchronise the nodes' anti-entropy rounds.
            next_anti_entropy: now_ms + seed % self.anti_entropy_ms.max(1),
            disk,
            pending: BTreeMap::new(),
            // Random per boot, so replies to a previous incarnation match nothing.
            next_rid: seed,
            out: VecDeque::new(),
        })
    }

    /// Toy disks are durable at once: nothing to lose, unless `forgetful`.
    fn power_loss(&mut self, index: NodeIndex, _seed: u64) {
        if self.forgetful {
            if let Some(disk) = self.disks.get(index) {
                disk.borrow_mut().clear();
            }
        }
    }

    fn replica_version(&self, index: NodeIndex, key: &[u8]) -> Result<Option<Vec<u8>>, SimError> {
        let disk = self.disks.get(index).ok_or(SimError::Storage {
            node: index,
            reason: "no such node".into(),
        })?;
        Ok(disk
            .borrow()
            .get(key)
            .map(|v| format!("{v:?}").into_bytes()))
    }

    fn message_key(&mut self, message: &ToyMsg) -> Option<Vec<u8>> {
        Some(message.key().to_vec())
    }
}

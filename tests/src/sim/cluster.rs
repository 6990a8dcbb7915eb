//! The glue to `ringkv_core::node::Node` (feature `node`): each simulated machine is a
//! `FaultStore` disk under an `LsmEngine`; a crash drops the node and keeps only the
//! disk's crash image; a boot reopens the engine and `Node::open`s on it. A failed
//! disk (`Fault::DiskFails`) fails the node's next sync while it keeps running; the
//! host then fail-stops it as the native host does (`fail_stop.rs`).
//!
//! Node `i` of the simulator is `NodeId(i + 1)`, capacity 1. Every machine is its own
//! process in zone `z{i % 3}`, except in the shard mix (`SimConfig::processes`): there
//! the machines of process `k` (of two or more) name `ProcessId(k + 1)` and share zone
//! `z{k % 3}`; a process of one names none.

use std::collections::HashMap;
use std::sync::Arc;

use ringkv_core::node::mutations::{Mutation, Mutations};
use ringkv_core::node::stored::{data_key, Stored};
use ringkv_core::node::{
    AdminRequest, ClientError, ClientReply, ClientRequest, Consistency, Input as NodeInput,
    MemberState, Node, NodeConfig, OpId, Output as NodeOutput, PeerMessage,
    RequestId as NodeRequestId, Role,
};
use ringkv_core::ring::{LayoutHistory, NodeId, NodeSpec, ProcessId, RingLayout};
use ringkv_core::storage::blockstore::FaultStore;
use ringkv_core::storage::lsm::{LsmEngine, LsmOptions};
use ringkv_core::storage::{BlockStore, Engine};

use super::api::{
    Change, Hardware, Holders, Input, LayoutSeen, NodeIndex, Output, Reply, Request, SimNode,
};
use super::config::SimConfig;
use super::error::SimError;
use super::fail_stop::FailStop;

const ZONES: usize = 3;

fn node_id(i: NodeIndex) -> NodeId {
    NodeId(i as u64 + 1)
}

/// Every machine's ring entry (capacity 1), machines grouped into `processes`.
fn specs_of(processes: &[Vec<NodeIndex>], machines: usize) -> Vec<NodeSpec> {
    let mut specs: Vec<NodeSpec> = (0..machines)
        .map(|i| NodeSpec::new(node_id(i).0, format!("z{}", i % ZONES), 1))
        .collect();
    for (k, shards) in processes.iter().enumerate() {
        for &i in shards {
            let Some(spec) = specs.get_mut(i) else {
                continue;
            };
            spec.zone = format!("z{}", k % ZONES);
            if shards.len() > 1 {
                spec.process = Some(ProcessId(k as u64 + 1));
            }
        }
    }
    specs
}

/// The most advanced layout history among the up nodes: the cluster's view.
fn newest_history<'a>(nodes: &[Option<&'a SimulatedNode>]) -> Option<&'a LayoutHistory> {
    nodes
        .iter()
        .flatten()
        .map(|n| n.node.layout_history())
        .max_by_key(|h| (h.committed().version(), h.epoch(), h.synced().len()))
}

/// `usize::MAX` for an id outside the cluster: the simulator drops such sends.
fn index_of(id: NodeId) -> NodeIndex {
    usize::try_from(id.0)
        .ok()
        .and_then(|v| v.checked_sub(1))
        .unwrap_or(usize::MAX)
}

/// What the layout check (`layouts.rs`) compares of a layout: all its defining fields.
fn layout_seen(layout: &RingLayout) -> LayoutSeen {
    let members: Vec<String> = layout
        .nodes()
        .values()
        .map(|spec| match spec.process {
            Some(process) => format!("n{}@{process}", spec.id.0),
            None => format!("n{}", spec.id.0),
        })
        .collect();
    LayoutSeen {
        version: layout.version(),
        summary: format!("v{} {{{}}}", layout.version(), members.join(", ")),
        full: format!("{layout:?}"),
    }
}

/// A `Node` behind the simulator's interface.
pub struct SimulatedNode {
    node: Node,
    /// The node's engine, watched for a failure after every input.
    engine: Arc<LsmEngine>,
    fail_stop: FailStop,
    /// The history last given to the layout check (`take_layouts`).
    layouts_taken: Option<LayoutHistory>,
    /// Every machine's ring entry, for the joins this node is asked to make.
    specs: Arc<[NodeSpec]>,
}

impl SimulatedNode {
    pub fn node(&self) -> &Node {
        &self.node
    }
}

fn to_node_request(request: Request) -> ClientRequest {
    let consistency = Consistency::Linearizable;
    match request {
        Request::GetEventual { key } => ClientRequest::Get {
            key,
            consistency: Consistency::Eventual,
        },
        Request::PutEventual {
            key,
            value,
            context,
        } => ClientRequest::PutEventual {
            key,
            value,
            context,
        },
        Request::Get { key } => ClientRequest::Get { key, consistency },
        Request::Put { key, value } => ClientRequest::Put {
            key,
            value,
            consistency,
        },
        Request::Delete { key } => ClientRequest::Delete { key, consistency },
        Request::Scan { cursor, count } => ClientRequest::Scan { cursor, count },
        Request::Update { key, update } => ClientRequest::Update { key, update },
    }
}

fn from_node_reply(reply: ClientReply) -> Reply {
    match reply {
        ClientReply::Value(v) => Reply::Value(v),
        ClientReply::Done => Reply::Done,
        ClientReply::Error(ClientError::Unavailable { .. }) => Reply::Unavailable,
        ClientReply::Error(ClientError::Indeterminate { .. }) => Reply::Indeterminate,
        ClientReply::Error(
            e @ (ClientError::TooLarge { .. }
            | ClientError::Overloaded
            | ClientError::Unsupported { .. }
            | ClientError::InvalidContext { .. }),
        ) => Reply::Rejected(e.to_string()),
        ClientReply::Error(ClientError::NotAnInteger) => Reply::NotAnInteger,
        ClientReply::Error(ClientError::Contention { .. }) => Reply::Contention,
        ClientReply::Siblings { values, context } => Reply::Siblings { values, context },
        ClientReply::Keys { keys, cursor } => Reply::Keys { keys, cursor },
        ClientReply::Updated {
            applied,
            previous,
            current,
        } => Reply::Updated {
            applied,
            previous,
            current,
        },
    }
}

impl SimNode for SimulatedNode {
    type Message = PeerMessage;

    fn handle(&mut self, now_ms: u64, input: Input<PeerMessage>) {
        match &input {
            Input::Client { id, .. } | Input::Admin { id, .. } if self.fail_stop.is_failed() => {
                self.fail_stop.refuse(*id);
                return;
            }
            _ if self.fail_stop.is_failed() => return,
            Input::Client { id, request } => self.fail_stop.took(
                *id,
                matches!(
                    request,
                    Request::Get { .. } | Request::GetEventual { .. } | Request::Scan { .. }
                ),
            ),
            Input::Admin { id, .. } => self.fail_stop.took(*id, false),
            Input::Peer { .. } | Input::Tick => {}
        }
        let input = match input {
            Input::Peer { from, message } => NodeInput::Peer {
                from: node_id(from),
                message,
            },
            Input::Client { id, request } => NodeInput::Client {
                id: NodeRequestId(id),
                request: to_node_request(request),
            },
            Input::Admin { id, change } => NodeInput::Client {
                id: NodeRequestId(id),
                request: ClientRequest::Admin(match change {
                    Change::Join(i) => match self.specs.get(i) {
                        Some(spec) => AdminRequest::Join(spec.clone()),
                        // Not a machine of this cluster: a join of nobody, refused.
                        None => AdminRequest::Join(NodeSpec::new(node_id(i).0, "", 0)),
                    },
                    Change::Leave(i) => AdminRequest::Leave(node_id(i)),
                    Change::ForceRemove(i) => AdminRequest::ForceRemove(node_id(i)),
                }),
            },
            Input::Tick => NodeInput::Tick,
        };
        self.node.handle(now_ms, input);
        if self.engine.failure().is_some() {
            // Everything this input produced may rest on the lost writes.
            while self.node.poll_output().is_some() {}
            self.fail_stop.trip();
        }
    }

    fn poll_output(&mut self) -> Option<Output<PeerMessage>> {
        if self.fail_stop.is_failed() {
            let (id, reply) = self.fail_stop.next_answer()?;
            return Some(Output::Reply { id, reply });
        }
        Some(match self.node.poll_output()? {
            NodeOutput::Send { to, message } => Output::Send {
                to: index_of(to),
                message,
            },
            NodeOutput::Reply { id, reply } => {
                self.fail_stop.answered(id.0);
                Output::Reply {
                    id: id.0,
                    reply: from_node_reply(reply),
                }
            }
        })
    }

    fn poll_timeout(&self) -> Option<u64> {
        if self.fail_stop.is_failed() {
            return None;
        }
        self.node.poll_timeout()
    }

    fn purge_floor(&self) -> Option<u64> {
        let committed = self.node.layout_history().committed();
        committed
            .node(self.node.id())
            .map(|_| committed.purge_floor())
    }

    fn hints_held(&self) -> u64 {
        self.node.status().hint_queues.values().sum()
    }

    fn members_not_alive(&self) -> usize {
        let status = self.node.status();
        if status.membership.role != Role::Member {
            // A joiner not (yet) added, or a node that left: it has no peers.
            return 0;
        }
        status
            .members
            .iter()
            .filter(|m| m.spec.id != status.id && m.state != MemberState::Alive)
            .count()
    }

    fn take_layouts(&mut self) -> Option<Vec<LayoutSeen>> {
        // Compared after every input: equality of two small member maps, while the
        // renderings are built only when the history changed.
        let history = self.node.layout_history();
        if self.layouts_taken.as_ref() == Some(history) {
            return None;
        }
        self.layouts_taken = Some(history.clone());
        let held = [Some(history.committed()), history.pending()];
        // Version 0 is a joiner's empty layout: not chosen by anyone.
        Some(
            held.into_iter()
                .flatten()
                .filter(|layout| layout.version() > 0)
                .map(layout_seen)
                .collect(),
        )
    }
}

/// Disks and engines of a simulated ringkv cluster.
pub struct NodeHardware {
    /// The initial members (machines `0..members.len()`); the rest start as joiners.
    members: Vec<NodeSpec>,
    /// Every machine's ring entry (members first, then the spare machines).
    specs: Arc<[NodeSpec]>,
    machines: usize,
    /// Machines that have ever been in a layout: never asked to join again (a removed
    /// node must not come back with its old data).
    ever_members: std::collections::BTreeSet<NodeIndex>,
    replicas: usize,
    /// A leave never takes the layout below this many members (`SimConfig::members_min`).
    members_min: usize,
    request_timeout_ms: u64,
    gossip_interval_ms: u64,
    purge_interval_ms: u64,
    change_timeout_ms: u64,
    stores: Vec<FaultStore>,
    /// The running engine of each up node, to read replicas for convergence.
    engines: Vec<Option<Arc<LsmEngine>>>,
    /// Which key each operation is about, learnt from its requests: replies carry only
    /// the operation id, and traces of a key should show them too.
    op_keys: HashMap<OpId, Vec<u8>>,
    /// Power loss erases the disk: a stand-in for a store that acknowledges writes it
    /// has not synced, to show lost acknowledged writes are reported.
    wipe_on_power_loss: bool,
    /// Eventual mode's R and W, if not the node defaults.
    eventual_quorums: Option<(usize, usize)>,
    /// Deliberate bugs every node runs with (mutation tests; none by default).
    mutations: Mutations,
}

impl NodeHardware {
    pub fn new(config: &SimConfig) -> Self {
        let machines = config.nodes + config.spare_nodes;
        let specs = specs_of(&config.process_groups(machines), machines);
        let members = specs.iter().take(config.nodes).cloned().collect();
        NodeHardware {
            members,
            specs: specs.into(),
            machines,
            ever_members: (0..config.nodes).collect(),
            replicas: config.replicas,
            members_min: config.replicas.max(config.members_min),
            request_timeout_ms: config.request_timeout_ms,
            gossip_interval_ms: config.gossip_interval_ms,
            purge_interval_ms: config.purge_interval_ms,
            change_timeout_ms: config.change_timeout_ms,
            stores: (0..machines).map(|_| FaultStore::new()).collect(),
            engines: vec![None; machines],
            op_keys: HashMap::new(),
            wipe_on_power_loss: false,
            eventual_quorums: None,
            mutations: Mutations::NONE,
        }
    }

    /// Every node runs with `mutation` on (a deliberate bug in `Node`'s code paths).
    pub fn with_mutation(mut self, mutation: Mutation) -> Self {
        self.mutations = self.mutations.with(mutation);
        self
    }

    /// Disks that lose everything on power loss (a broken storage layer).
    pub fn wipe_on_power_loss(mut self) -> Self {
        self.wipe_on_power_loss = true;
        self
    }

    /// Eventual mode with read quorum `r` and write quorum `w` (defaults: 2 and 2).
    pub fn eventual_quorums(mut self, r: usize, w: usize) -> Self {
        self.eventual_quorums = Some((r, w));
        self
    }

    fn config(&self, i: NodeIndex) -> Option<NodeConfig> {
        if i >= self.machines {
            return None;
        }
        let members = if i < self.members.len() {
            self.members.clone()
        } else {
            Vec::new()
        };
        let mut config = NodeConfig::for_member(self.specs.get(i)?, members);
        config.replicas = self.replicas;
        config.request_timeout_ms = self.request_timeout_ms;
        config.gossip_interval_ms = self.gossip_interval_ms;
        if let Some((r, w)) = self.eventual_quorums {
            config.eventual_r = r;
            config.eventual_w = w;
        }
        config.mutations = self.mutations;
        config.purge_interval_ms = self.purge_interval_ms;
        config.change_timeout_ms = self.change_timeout_ms;
        Some(config)
    }
}

impl Hardware for NodeHardware {
    type Node = SimulatedNode;

    fn nodes(&self) -> usize {
        self.machines
    }

    fn replicas(&self) -> usize {
        self.replicas
    }

    fn boot(&mut self, i: NodeIndex, now_ms: u64, seed: u64) -> Result<SimulatedNode, SimError> {
        let fail = |reason: String| SimError::Open {
            node: i,
            time_ms: now_ms,
            reason,
        };
        let (Some(config), Some(store)) = (self.config(i), self.stores.get(i)) else {
            return Err(fail("no such node".into()));
        };
        let store: Arc<dyn BlockStore> = Arc::new(store.clone());
        // Tiny tables: flushes and compactions happen within a run, and recover.
        let engine =
            LsmEngine::open(store, LsmOptions::tiny()).map_err(|e| fail(format!("engine: {e}")))?;
        let engine = Arc::new(engine);
        let node = Node::open(config, engine.clone() as Arc<dyn Engine>, seed, now_ms)
            .map_err(|e| fail(format!("node: {e}")))?;
        self.engines[i] = Some(engine.clone());
        Ok(SimulatedNode {
            node,
            engine,
            fail_stop: FailStop::default(),
            layouts_taken: None,
            specs: self.specs.clone(),
        })
    }

    fn power_loss(&mut self, i: NodeIndex, seed: u64) {
        if let Some(store) = self.stores.get_mut(i) {
            // A fresh store holding the crash image; the old one dies with the node.
            *store = if self.wipe_on_power_loss {
                FaultStore::new()
            } else {
                store.crash_image(seed)
            };
            self.engines[i] = None;
        }
    }

    fn fail_disk(&mut self, i: NodeIndex) {
        if let Some(store) = self.stores.get(i) {
            store.fail_next_sync();
        }
    }

    fn replica_version(&self, i: NodeIndex, key: &[u8]) -> Result<Option<Vec<u8>>, SimError> {
        let Some(engine) = self.engines.get(i).and_then(Option::as_ref) else {
            return Ok(None);
        };
        let storage = |reason: String| SimError::Storage { node: i, reason };
        let Some(bytes) = engine
            .get(&data_key(key))
            .map_err(|e| storage(e.to_string()))?
        else {
            return Ok(None);
        };
        // The register's version alone (a conditional write's promise is not part of
        // it, and a promise-only record is no register), as `postcard(Stored)` of a
        // plain register: equal bytes iff equal tag and value.
        let stored = Stored::decode(&bytes).map_err(|e| storage(e.to_string()))?;
        let Some((tag, value)) = stored.register() else {
            return Ok(None);
        };
        let register = Stored::Register {
            tag,
            value: value.map(<[u8]>::to_vec),
        };
        register
            .encode()
            .map(Some)
            .map_err(|e| storage(e.to_string()))
    }

    fn tombstone_tag(&self, i: NodeIndex, key: &[u8]) -> Result<Option<u64>, SimError> {
        let Some(bytes) = self.replica_version(i, key)? else {
            return Ok(None);
        };
        let stored = Stored::decode(&bytes).map_err(|e| SimError::Storage {
            node: i,
            reason: e.to_string(),
        })?;
        Ok(match stored.register() {
            Some((tag, None)) => Some(tag.counter),
            _ => None,
        })
    }

    fn eventual_version(&self, i: NodeIndex, key: &[u8]) -> Result<Option<Vec<u8>>, SimError> {
        let Some(engine) = self.engines.get(i).and_then(Option::as_ref) else {
            return Ok(None);
        };
        // `postcard(EventualRecord)` of ordered maps: equal bytes iff equal states.
        engine
            .get(&ringkv_core::node::eventual::stored::eventual_key(key))
            .map_err(|e| SimError::Storage {
                node: i,
                reason: e.to_string(),
            })
    }

    fn plan_change(
        &mut self,
        nodes: &[Option<&SimulatedNode>],
        choice: u64,
    ) -> Option<(NodeIndex, Change)> {
        let history = newest_history(nodes)?;
        if history.pending().is_some() {
            return None;
        }
        let members: Vec<NodeIndex> = history
            .committed()
            .nodes()
            .keys()
            .map(|id| index_of(*id))
            .collect();
        let joinable: Vec<NodeIndex> = (0..self.machines)
            .filter(|i| !self.ever_members.contains(i))
            .collect();
        let change = if !joinable.is_empty()
            && (!choice.is_multiple_of(3) || members.len() <= self.members_min)
        {
            Change::Join(joinable[(choice / 3) as usize % joinable.len()])
        } else if members.len() > self.members_min {
            Change::Leave(members[(choice / 3) as usize % members.len()])
        } else {
            return None;
        };
        let askable: Vec<NodeIndex> = members
            .iter()
            .copied()
            .filter(|i| nodes.get(*i).is_some_and(Option::is_some))
            .collect();
        if askable.is_empty() {
            return None;
        }
        let to = askable[(choice / 7) as usize % askable.len()];
        if let Change::Join(i) = change {
            // Counted once asked: if the change is chosen it may commit later.
            self.ever_members.insert(i);
        }
        Some((to, change))
    }

    fn layout_members(&self, nodes: &[Option<&SimulatedNode>]) -> Option<(Vec<NodeIndex>, bool)> {
        let history = newest_history(nodes)?;
        let members = history.committed().nodes().keys().map(|id| index_of(*id));
        Some((members.collect(), history.pending().is_some()))
    }

    fn changes_aborted(&self, nodes: &[Option<&SimulatedNode>]) -> u64 {
        nodes
            .iter()
            .flatten()
            .map(|n| n.node.status().membership.counters.changes_aborted)
            .max()
            .unwrap_or(0)
    }

    fn holders(&self, nodes: &[Option<&SimulatedNode>], key: &[u8]) -> Holders {
        match newest_history(nodes) {
            Some(history) if history.pending().is_none() => Holders::Only(
                history
                    .committed()
                    .preference_list(key)
                    .into_iter()
                    .map(index_of)
                    .collect(),
            ),
            _ => Holders::Unsettled,
        }
    }

    fn message_key(&mut self, message: &PeerMessage) -> Option<Vec<u8>> {
        match message {
            // Requests name their key: remember it for the operation's replies.
            PeerMessage::ReadTag { req, key, .. }
            | PeerMessage::Read { req, key, .. }
            | PeerMessage::Write { req, key, .. }
            | PeerMessage::EventualRead { req, key }
            | PeerMessage::EventualUpdate { req, key, .. }
            | PeerMessage::EventualMerge { req, key, .. }
            | PeerMessage::Prepare { req, key, .. }
            | PeerMessage::Accept { req, key, .. } => {
                self.op_keys.insert(*req, key.clone());
                Some(key.clone())
            }
            PeerMessage::AntiEntropyPush { key, .. }
            | PeerMessage::AntiEntropyPushEventual { key, .. } => Some(key.clone()),
            // Replies (and `Stale`) carry only their operation's id.
            other => other
                .op_id()
                .and_then(|req| self.op_keys.get(&req).cloned()),
        }
    }

    fn is_replica_write(&self, message: &PeerMessage) -> bool {
        matches!(
            message,
            PeerMessage::Write { .. }
                | PeerMessage::EventualUpdate { .. }
                | PeerMessage::Accept { .. }
        )
    }

    fn supports_eventual(&self) -> bool {
        true
    }

    fn supports_updates(&self) -> bool {
        true
    }

    fn supports_scans(&self) -> bool {
        true
    }

    fn supports_processes(&self) -> bool {
        true
    }
}

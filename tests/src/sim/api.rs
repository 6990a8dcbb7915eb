//! What the simulator needs from the system under test, in the simulator's own terms.
//!
//! The event loop is generic over [`Hardware`] (disks, booting) and [`SimNode`] (one
//! node's state machine), so it runs against `ringkv_core::node::Node` (`cluster.rs`)
//! and against the small ABD model in `toy.rs` alike.

use std::fmt::Debug;

use super::error::SimError;

pub use ringkv_core::protocol::client::{Condition, Update};

/// Nodes are numbered `0..n` in the simulator.
pub type NodeIndex = usize;
/// How traces name node `i`: `n1`, `n2`, ... (1-based, like `ringkv` node ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Name(pub NodeIndex);

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "n{}", self.0.wrapping_add(1))
    }
}

/// Client request ids, unique within a run.
pub type RequestId = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Get {
        key: Vec<u8>,
    },
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        key: Vec<u8>,
    },
    /// Eventual mode (only where [`Hardware::supports_eventual`]): a read answered with
    /// every sibling and a causal context.
    GetEventual {
        key: Vec<u8>,
    },
    /// Eventual mode: a write superseding what the read that gave `context` saw
    /// (`None`: a blind write, concurrent with everything).
    PutEventual {
        key: Vec<u8>,
        value: Vec<u8>,
        context: Option<Vec<u8>>,
    },
    /// A scan page (only where [`Hardware::supports_scans`]): keys from ring position
    /// `cursor` on, about `count` of them.
    Scan {
        cursor: u64,
        count: u32,
    },
    /// A conditional set or an add (only where [`Hardware::supports_updates`]),
    /// linearizable together with the key's gets, puts and deletes.
    Update {
        key: Vec<u8>,
        update: Update,
    },
}

impl Request {
    pub fn key(&self) -> &[u8] {
        match self {
            Request::Get { key }
            | Request::Put { key, .. }
            | Request::Delete { key }
            | Request::GetEventual { key }
            | Request::PutEventual { key, .. }
            | Request::Update { key, .. } => key,
            Request::Scan { .. } => &[],
        }
    }
}

/// A node's answer, reduced to what the history needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Value(Option<Vec<u8>>),
    Done,
    /// Definitely not applied.
    Unavailable,
    /// May or may not have been applied.
    Indeterminate,
    /// Refused before doing anything (overloaded, too large, unsupported).
    Rejected(String),
    /// An eventual read's answer: every sibling value (`None`: a tombstone) and the
    /// opaque causal context for the next write of the key.
    Siblings {
        values: Vec<Option<Vec<u8>>>,
        context: Vec<u8>,
    },
    /// A scan page's keys and the next cursor (`0`: the scan is complete).
    Keys {
        keys: Vec<Vec<u8>>,
        cursor: u64,
    },
    /// An add found a value that is not an integer (or the sum overflows); nothing
    /// changed. An observation of the register, unlike `Rejected`.
    NotAnInteger,
    /// Concurrent conditional writes kept an update from its round: not applied.
    Contention,
    /// A conditional write's result (`ClientReply::Updated`).
    Updated {
        applied: bool,
        previous: Option<Vec<u8>>,
        current: Option<Vec<u8>>,
    },
}

#[derive(Debug, Clone)]
pub enum Input<M> {
    Peer {
        from: NodeIndex,
        message: M,
    },
    Client {
        id: RequestId,
        request: Request,
    },
    /// An operator's membership change, answered like a client request (its reply is
    /// counted, not checked: it is not part of any key's history).
    Admin {
        id: RequestId,
        change: Change,
    },
    Tick,
}

/// A membership change the simulator asks a node to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Add this machine (started with no member list) to the cluster.
    Join(NodeIndex),
    /// Decommission this member.
    Leave(NodeIndex),
    /// Remove this member, which is gone for good, rebuilding its ranges from the
    /// surviving replicas.
    ForceRemove(NodeIndex),
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Join(i) => write!(f, "join {}", Name(*i)),
            Change::Leave(i) => write!(f, "leave {}", Name(*i)),
            Change::ForceRemove(i) => write!(f, "remove --force {}", Name(*i)),
        }
    }
}

/// Which nodes must agree on a key for the cluster to have converged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holders {
    /// Any node holding a version, and at least `Hardware::replicas` of them.
    Any,
    /// Exactly these (the key's replicas in the settled layout).
    Only(Vec<NodeIndex>),
    /// A membership change is still in progress: not converged.
    Unsettled,
}

#[derive(Debug, Clone)]
pub enum Output<M> {
    Send { to: NodeIndex, message: M },
    Reply { id: RequestId, reply: Reply },
}

/// One node's sans-IO state machine. `now_ms` is the node's own (skewed) clock.
pub trait SimNode {
    type Message: Clone + Debug;
    fn handle(&mut self, now_ms: u64, input: Input<Self::Message>);
    fn poll_output(&mut self) -> Option<Output<Self::Message>>;
    /// Local time at which the node wants `Input::Tick`.
    fn poll_timeout(&self) -> Option<u64>;

    /// Eventual mode: hints this node holds for other nodes (not yet handed off).
    fn hints_held(&self) -> u64 {
        0
    }

    /// Members this node does not currently believe `Alive` (itself excluded): while
    /// any is, its eventual operations may go to fallbacks instead of owners.
    fn members_not_alive(&self) -> usize {
        0
    }

    /// The layouts (versioned member lists) this node holds now, committed and pending,
    /// if they changed since the last call (always on a node's first call); `None` if
    /// not. The run checks that each version names one layout on every node
    /// (`layouts.rs`). Default: never any (static membership).
    fn take_layouts(&mut self) -> Option<Vec<LayoutSeen>> {
        None
    }

    /// The purge floor of this node's committed layout (register tombstones with a tag
    /// counter at or below it are as good as absent), or `None` if the node purges
    /// nothing: not a member of its committed layout, or no purge at all (default).
    fn purge_floor(&self) -> Option<u64> {
        None
    }
}

/// One layout a node holds, for the layout check (`layouts.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutSeen {
    pub version: u64,
    /// Short, for reports: e.g. `v3 {n1, n2, n4}`.
    pub summary: String,
    /// Everything that defines the layout (equal iff the same layout).
    pub full: String,
}

/// The machines under the nodes: disks that outlive processes, and booting.
pub trait Hardware {
    type Node: SimNode;

    fn nodes(&self) -> usize;

    /// How many replicas hold each key (a key has converged when that many agree).
    fn replicas(&self) -> usize;

    /// Starts node `index` from what its disk holds.
    fn boot(
        &mut self,
        index: NodeIndex,
        now_ms: u64,
        rng_seed: u64,
    ) -> Result<Self::Node, SimError>;

    /// Power loss on `index`, called while its `Node` still exists (it is dropped right
    /// after, so nothing it does on drop reaches the disk): the disk keeps what was
    /// synced plus a `seed`-chosen prefix of each unsynced tail.
    fn power_loss(&mut self, index: NodeIndex, seed: u64);

    /// The next sync of `index`'s disk fails with EIO; the node keeps running. Hardware
    /// without such disks ignores it.
    fn fail_disk(&mut self, index: NodeIndex) {
        let _ = index;
    }

    /// An opaque rendering of `index`'s stored version of `key` (equal iff the same
    /// version), `None` if it stores nothing for it.
    fn replica_version(&self, index: NodeIndex, key: &[u8]) -> Result<Option<Vec<u8>>, SimError>;

    /// An opaque rendering of `index`'s stored eventual state of `key` (equal iff the
    /// same state), `None` if it stores none. Hardware without eventual mode: `None`.
    /// The tag counter of the register tombstone `index` stores for `key`, if it stores
    /// one. Hardware without purge: `None`.
    fn tombstone_tag(&self, index: NodeIndex, key: &[u8]) -> Result<Option<u64>, SimError> {
        let _ = (index, key);
        Ok(None)
    }

    fn eventual_version(&self, index: NodeIndex, key: &[u8]) -> Result<Option<Vec<u8>>, SimError> {
        let _ = (index, key);
        Ok(None)
    }

    /// A membership change to make now (`choice` is a random number to pick with) and
    /// the up member to ask, given the nodes (`None`: down); `None` if there is none to
    /// make (or the system has no membership changes).
    fn plan_change(
        &mut self,
        nodes: &[Option<&Self::Node>],
        choice: u64,
    ) -> Option<(NodeIndex, Change)> {
        let _ = (nodes, choice);
        None
    }

    /// The newest layout the up nodes hold: its members, and whether a change is still
    /// pending. `None` if the system has no layouts.
    fn layout_members(&self, nodes: &[Option<&Self::Node>]) -> Option<(Vec<NodeIndex>, bool)> {
        let _ = nodes;
        None
    }

    /// Membership changes that ended aborted, as far as the up nodes know (the most any
    /// one of them counted).
    fn changes_aborted(&self, nodes: &[Option<&Self::Node>]) -> u64 {
        let _ = nodes;
        0
    }

    /// Which nodes must hold the same version of `key` for convergence.
    fn holders(&self, nodes: &[Option<&Self::Node>], key: &[u8]) -> Holders {
        let _ = (nodes, key);
        Holders::Any
    }

    /// The user key a message is about, if any (traces of a key show its messages).
    /// Called once per message, in send order, so an implementation may learn e.g.
    /// which key an operation id belongs to from requests and label the replies.
    fn message_key(&mut self, message: &<Self::Node as SimNode>::Message) -> Option<Vec<u8>>;

    /// Whether `message` asks a replica to store a value (a put's phase 2, a read's
    /// write-back, an eventual update): where a crash mid-send (`midsend.rs`) cuts.
    fn is_replica_write(&self, message: &<Self::Node as SimNode>::Message) -> bool {
        let _ = message;
        false
    }

    /// Whether the nodes serve eventual-mode requests ([`Request::GetEventual`],
    /// [`Request::PutEventual`]); the set workload runs only if so.
    fn supports_eventual(&self) -> bool {
        false
    }

    /// Whether the nodes serve [`Request::Scan`]; the scan mix runs only if so.
    fn supports_scans(&self) -> bool {
        false
    }

    /// Whether the nodes serve [`Request::Update`]; the update mix runs only if so.
    fn supports_updates(&self) -> bool {
        false
    }

    /// Whether the nodes place replicas by process (`SimConfig::processes`): only such
    /// hardware runs the shard mix; other hardware runs those seeds in the mix they
    /// would have without it (`SimConfig::for_hardware`).
    fn supports_processes(&self) -> bool {
        false
    }
}

//! Physical node identity as the ring sees it.

use serde::{Deserialize, Serialize};

/// Stable identity of a physical node. Assigned once, never reused: versioning dots
/// and ring tokens are both derived from it (see `docs/ring.md`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct NodeId(pub u64);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A ring member: where it is (failure domain) and how much it should hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeSpec {
    pub id: NodeId,
    /// Failure domain (rack, availability zone). Replicas of a key go to distinct zones
    /// while there are enough zones.
    pub zone: String,
    /// Relative weight in capacity units: a node gets `capacity` times the layout's
    /// vnodes per unit. 0 is allowed and means "member without data" (e.g. draining).
    pub capacity: u32,
    /// Where peers reach this node, in the host's terms (e.g. `127.0.0.1:7001`). Opaque
    /// to the core, which routes by [`NodeId`]; empty for a node that cannot accept
    /// connections (a browser replica, reached through a relay).
    pub address: String,
    /// The member's identity: the digest of the secret its store generated when it was
    /// first opened, recorded when it joined. A node whose store holds another secret is
    /// not this member (it lost its state, or took another's id) and never acts as it;
    /// a relay host admits the member only with the secret. `None`: not bound (members
    /// of a static `--member` list).
    pub identity: Option<IdentityDigest>,
    /// The OS process this member runs in, shared by every shard of that process. A
    /// process is one failure domain (a crash takes all its shards down at once), so no
    /// key ever has two replicas in one process (`preference.rs`: a hard rule, unlike
    /// zones). `None`: the member is a process of its own. Every member of a process
    /// must be in the same zone (a process runs on one machine); layouts that break
    /// this are refused ([`super::LayoutError::ProcessSpansZones`]).
    pub process: Option<ProcessId>,
}

/// Names an OS process hosting one or more ring members ("shards"). Its own number
/// space: `ProcessId(7)` and `NodeId(7)` are unrelated.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ProcessId(pub u64);

impl std::fmt::Display for ProcessId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// A member's failure domain for placement: its process, or the member alone when it
/// names none. Two members share a domain iff they name the same [`ProcessId`] (a
/// member without one shares its domain with no other member).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Domain {
    Process(ProcessId),
    Alone(NodeId),
}

impl NodeSpec {
    pub fn new(id: u64, zone: impl Into<String>, capacity: u32) -> Self {
        NodeSpec {
            id: NodeId(id),
            zone: zone.into(),
            capacity,
            address: String::new(),
            identity: None,
            process: None,
        }
    }

    /// This spec as a shard of process `process`.
    pub fn in_process(mut self, process: ProcessId) -> Self {
        self.process = Some(process);
        self
    }

    /// The failure domain placement keeps a key's replicas apart by.
    pub fn domain(&self) -> Domain {
        match self.process {
            Some(process) => Domain::Process(process),
            None => Domain::Alone(self.id),
        }
    }

    /// This spec with `address` set.
    pub fn with_address(mut self, address: impl Into<String>) -> Self {
        self.address = address.into();
        self
    }

    /// This spec bound to the store whose secret has digest `identity`.
    pub fn with_identity(mut self, identity: IdentityDigest) -> Self {
        self.identity = Some(identity);
        self
    }
}

/// Bytes of a member's identity secret.
pub const IDENTITY_SECRET_BYTES: usize = 32;

/// SHA-256 of a member's identity secret ([`NodeSpec::identity`]): public (it travels in
/// every layout); the secret itself stays with the member's data and, for a relayed
/// replica, is shown only to the native node it attaches to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IdentityDigest(pub [u8; 32]);

impl IdentityDigest {
    pub fn of(secret: &[u8]) -> Self {
        use sha2::Digest;
        IdentityDigest(sha2::Sha256::digest(secret).into())
    }
}

impl std::fmt::Debug for IdentityDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for byte in &self.0[..6] {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("…")
    }
}

impl std::fmt::Display for IdentityDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

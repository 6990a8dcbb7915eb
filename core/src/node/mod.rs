//! The cluster node: one sans-IO state machine per node that is replica, coordinator
//! and gossip member at once. Design: `docs/cluster-design.md`; message flow:
//! ARCHITECTURE.md, "Cluster: messages and the put/get paths".
//!
//! - `machine`: [`Node`] (`open`, `handle`, `poll_output`, `poll_timeout`, `status`).
//! - `io`: [`Input`] and [`Output`].
//! - `config`: [`NodeConfig`].
//! - `coordinator`, `op`, `tags`: ABD operations from the coordinator's side.
//! - `replica`: ABD from the replica's side; `stored`: the `d/` record format.
//! - `gossip`: heartbeat failure detection; `meta`: `m/` identity and membership.
//! - `timers`, `outbox`: deadlines and the bounded output queue.
//! - `eventual`: the opt-in eventual mode (sloppy quorums, siblings, hinted handoff,
//!   read repair); its own keyspace, messages and operations, apart from ABD.
//! - `membership`: layout changes (admin requests, Paxos per version, the epoch
//!   fence, streaming moved ranges).
//! - `ae`: anti-entropy: position index, Merkle trees, exchanges with co-replicas.
//! - `purge`: dropping register tombstones every replica holds (confirmation rounds
//!   and purge changes).
//! - `backup`: paging out a replica's records for `ringkv backup`, merging copies.
//! - `mutations`: deliberate bugs for the simulator's mutation tests (feature
//!   `mutations` only; a no-op otherwise).

mod ae;
pub mod backup;
pub mod config;
mod coordinator;
pub mod error;
pub mod eventual;
mod gossip;
pub mod io;
pub mod local_keys;
pub mod machine;
pub mod membership;
mod meta;
pub mod purge;
// Deliberate bugs for the simulator's mutation tests: reachable only with the cargo
// feature `mutations` (see the module's docs); without it a zero-sized no-op.
#[cfg(feature = "mutations")]
#[doc(hidden)]
pub mod mutations;
#[cfg(not(feature = "mutations"))]
#[allow(dead_code)]
mod mutations;
mod op;
mod outbox;
mod replica;
pub mod status;
pub mod stored;
mod tags;
mod timers;

pub use ae::{AntiEntropyCounters, AntiEntropyStatus, LastExchange, RangeStatus};
pub use config::NodeConfig;
pub use coordinator::{parse_integer, SCAN_COUNT_MAX};
pub use error::NodeError;
pub use gossip::MemberState;
pub use io::{Input, Output};
pub use machine::Node;
pub use membership::{MembershipCounters, MembershipStatus, Role, SyncStatus};
pub use status::{MemberStatus, NodeCounters, NodeStatus};
pub use stored::Stored;

pub use crate::protocol::{
    AdminRequest, ClientError, ClientReply, ClientRequest, Condition, Consistency, OpId, Oversized,
    PeerMessage, RequestId, Update,
};

//! Anti-entropy: per-range hash trees kept current on every write, and the exchange
//! that finds which leaf buckets differ between two replicas in a few bounded round
//! trips. Pure data structures and state machines; the node moves the messages, scans
//! the differing buckets' keys and merges them. Design and costs: `docs/antientropy.md`.
//!
//! - [`hash`]: stable SipHash-2-4 entry hashes.
//! - [`config`]: limits and the per-range depth policy.
//! - [`bucket`]: position ↔ leaf bucket.
//! - [`tree`]: [`MerkleTree`], one range, O(depth) incremental updates.
//! - [`set`]: [`MerkleSet`], every range a node replicates.
//! - [`message`]: the wire messages.
//! - [`respond`]: the (stateless) responder and comparison helpers.
//! - [`exchange`]: [`Exchange`], the initiator's state machine (`runs`: its message
//!   packing).

pub mod bucket;
pub mod config;
pub mod error;
pub mod exchange;
pub mod hash;
pub mod message;
pub mod respond;
mod runs;
pub mod set;
pub mod tree;

#[cfg(test)]
mod tests;

pub use bucket::{bucket_key_range, bucket_of};
pub use config::{
    MerkleConfig, MAX_DEPTH, MAX_FANOUT_LOG2, MAX_HASHES_PER_MESSAGE, MAX_ROOTS_PER_MESSAGE,
};
pub use error::AntiEntropyError;
pub use exchange::{Exchange, ExchangeStep};
pub use hash::{entry_hash, version_digest, VersionDigest};
pub use message::{
    ExchangeId, ExchangeRequest, ExchangeResponse, HashRun, RejectReason, RootBatch,
    RootBatchReply, RootEntry,
};
pub use respond::{diff_trees, differing_offsets};
pub use set::{MerkleSet, RebuildStats};
pub use tree::MerkleTree;

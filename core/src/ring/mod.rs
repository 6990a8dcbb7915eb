//! The consistent-hash ring: which nodes hold which keys.
//!
//! Pure functions of a [`RingLayout`] (the versioned member list): every member computes
//! the same ring from the same layout, with no coordination. Design and measured
//! figures: `docs/ring.md`.
//!
//! - [`token`]: key → position and (node, vnode) → position, fixed SipHash-2-4.
//! - [`layout`]: members, capacities, zones, processes, N; tokens derived.
//! - [`preference`]: the zone- and process-aware clockwise walk giving a key's N
//!   replicas (never two in one process).
//! - [`ownership`]: ranges per node, per replica set, and what moves between layouts.
//! - [`history`]: the committed layout and the change in flight (joint quorums).
//! - [`balance`]: load spread and key movement, measured on a key sample.

pub mod balance;
pub mod error;
pub mod history;
pub mod layout;
pub(crate) mod legacy;
pub mod node;
pub mod ownership;
pub mod preference;
pub mod range;
pub mod token;

#[cfg(test)]
mod tests;

pub use balance::{
    key_movement, keys_moved_fraction, load_balance, BalanceReport, MovementReport, NodeLoad,
};
pub use error::LayoutError;
pub use history::{HistoryError, LayoutHistory};
pub use layout::{
    epoch_tag_base, purge_floor_for, RingLayout, DEFAULT_REPLICAS, DEFAULT_VNODES_PER_CAPACITY_UNIT,
};
pub use node::{Domain, IdentityDigest, NodeId, NodeSpec, ProcessId, IDENTITY_SECRET_BYTES};
pub use ownership::{ranges_moved, MovedRange};
pub use range::{TokenRange, RING_SIZE_POSITIONS};
pub use token::{key_position, token_position, Position};

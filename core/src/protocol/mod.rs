//! What nodes and clients say to each other: message types and the versioned frame
//! codec. Pure data, no IO: hosts move the bytes.
//!
//! - [`messages`]: node-to-node messages ([`PeerMessage`]), ids that tie replies to
//!   requests ([`OpId`]).
//! - [`client`]: what a client asks a coordinator and what it gets back.
//! - [`codec`]: `encode`/`decode` of a [`PeerMessage`] into one length-limited,
//!   versioned frame; decoding never panics on any input.
//! - [`antientropy`]: the repair pages that follow a Merkle exchange.

pub mod antientropy;
pub mod client;
pub mod codec;
pub mod error;
pub mod messages;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

pub use antientropy::{KeyPage, KeyPageReply, KeyVersion};
pub use client::{ClientError, ClientReply, ClientRequest, Consistency, Oversized, RequestId};
pub use codec::{decode, encode, FORMAT_VERSION, FRAME_SIZE_BYTES_MAX};
pub use error::ProtocolError;
pub use messages::{EventualRefusal, GossipEntry, OpId, PeerMessage, SiblingState};

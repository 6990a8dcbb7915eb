//! What nodes and clients say to each other: message types and the versioned frame
//! codec. Pure data, no IO: hosts move the bytes.
//!
//! - [`messages`]: node-to-node messages ([`PeerMessage`]), ids that tie replies to
//!   requests ([`OpId`]).
//! - [`client`]: what a client asks a coordinator and what it gets back.
//! - [`codec`]: `encode`/`decode` of a [`PeerMessage`] into one length-limited,
//!   versioned frame; decoding never panics on any input.
//! - [`membership`]: layout changes (Paxos per version) and range streaming.
//! - [`antientropy`]: the repair pages that follow a Merkle exchange.
//! - [`wire`]: the client (`/client`) and replica relay (`/replica`) frames.

pub mod antientropy;
pub mod client;
pub mod codec;
pub mod error;
pub mod membership;
pub mod messages;
pub mod wire;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

pub use antientropy::{KeyPage, KeyPageReply, KeyVersion};
pub use client::{
    AdminRequest, ClientError, ClientReply, ClientRequest, Condition, Consistency, Oversized,
    RequestId, Update,
};
pub use codec::{
    decode, decode_frame, encode, encode_batch, is_relay_envelope, BATCH_FORMAT_VERSION,
    FORMAT_VERSION, FRAME_SIZE_BYTES_MAX,
};
pub use error::ProtocolError;
pub use membership::{
    cursor_digest, Ballot, LayoutReport, SyncCursor, SyncEntry, SyncPage, SYNC_PAGE_BYTES_MAX,
    SYNC_PAGE_ENTRIES_MAX,
};
pub use messages::{
    EventualRefusal, GossipEntry, OpId, PeerMessage, ScanEntry, SiblingState,
    PURGE_CHECK_ENTRIES_MAX,
};

//! The peer transport: WebSocket connections between nodes carrying core frames.
//!
//! Each ordered pair of nodes uses one connection per direction: `link` dials a peer
//! and only sends on it; `inbound` accepts a peer's dial and only receives. Both start
//! with the `auth` handshake. Sends go through a bounded queue per peer and are
//! dropped when it is full or the peer is unreachable, as a lossy network would (the
//! core retransmits and tolerates loss).
//!
//! `book` is the single place peer addresses come from; `route` decides where a frame
//! goes; `relay` serves replicas that cannot accept connections (browsers).

/// HTTP header of the `/peer` upgrade, in the dialer's request and the acceptor's
/// answer: the peer protocol version the sender speaks (`protocol::FORMAT_VERSION`).
/// A mismatch is refused before the handshake with `426 Upgrade Required` carrying the
/// acceptor's version, so both sides can log both versions. Builds from before the
/// header send none; their frames carry the version and are refused at the first one.
pub const PROTOCOL_HEADER: &str = "x-ringkv-peer-protocol";
/// HTTP header of the dialer's upgrade request naming the node it claims to be; only
/// for the acceptor's log line when it refuses the version (the id is proven only
/// later, by the handshake).
pub const NODE_HEADER: &str = "x-ringkv-peer-node";

/// The log line of a refused peer protocol version (both sides say the same).
pub fn version_refusal(peer: &str, theirs: &str) -> String {
    format!(
        "refused peer {peer}: it speaks peer protocol version {theirs}, this node speaks {}; \
         every node of a cluster must speak one version (finish the upgrade, or roll back)",
        ringkv_core::protocol::FORMAT_VERSION
    )
}

pub mod auth;
pub mod book;
pub mod inbound;
pub mod link;
pub mod relay;
pub mod route;
pub mod router;

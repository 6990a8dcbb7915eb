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

pub mod auth;
pub mod book;
pub mod inbound;
pub mod link;
pub mod relay;
pub mod route;
pub mod router;

//! What the host hands a node and what it takes out.

use crate::protocol::{ClientReply, ClientRequest, PeerMessage, RequestId};
use crate::ring::NodeId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A message from another node (as the transport identifies the sender).
    Peer { from: NodeId, message: PeerMessage },
    /// A client request for this node to coordinate.
    Client {
        id: RequestId,
        request: ClientRequest,
    },
    /// Time passed: the host calls this at (or after) `poll_timeout()`.
    Tick,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Deliver `message` to node `to` (best effort: loss is tolerated).
    Send { to: NodeId, message: PeerMessage },
    /// The answer to client request `id`; exactly one per `Input::Client`.
    Reply { id: RequestId, reply: ClientReply },
}

//! The client protocol (WebSocket path `/client`) and the replica relay protocol
//! (`/replica`): the frames hosts and clients exchange, shared by the native server and
//! CLI and by the wasm package. Documented in ARCHITECTURE.md.
//!
//! Every message is one binary WebSocket message: `CLIENT_PROTOCOL_VERSION (u8) |
//! postcard(frame)`. The first client message must be `Hello` (browsers cannot set
//! headers on a WebSocket, so the token travels here); the server answers `Welcome` or
//! `Refused` and closes. Requests carry a client-chosen `id` echoed in the answer;
//! answers may come in any order.
//!
//! Replicas without a listener (browser and edge-worker replicas) attach to a native
//! node over `/replica` and the node relays their peer frames. Such a replica's
//! `NodeSpec::address` is `relay:<host node id>`; a node sending to it wraps the frame
//! in `PeerMessage::Relayed` and sends that to the host, which hands it to the replica.

use super::client::{ClientReply, ClientRequest};
use super::membership::SyncEntry;
use crate::node::backup::BackupCursor;
use crate::ring::{NodeId, RingLayout};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// 2: members carry an identity digest; `ReplicaUp::Hello` an identity secret.
/// 3: members carry their process (`NodeSpec::process`: `Join`, `Layout`).
pub const CLIENT_PROTOCOL_VERSION: u8 = 3;

/// Client → server. Variants are only appended (postcard encodes the index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientFrame {
    Hello {
        token: Option<String>,
    },
    Request {
        id: u64,
        request: ClientRequest,
    },
    /// The node's status as JSON (the same document as HTTP `/status`).
    Status {
        id: u64,
    },
    /// Keys this node holds as a replica (linearizable keyspace, deleted ones excluded),
    /// in byte order after `after`, at most `limit` (capped by the server). For export:
    /// the union over all nodes is every key.
    LocalKeys {
        id: u64,
        after: Option<Vec<u8>>,
        limit: u32,
    },
    /// The node's committed layout (`ServerFrame::Layout`): who the members are and
    /// which replicas each range has, for a backup's coverage check.
    Layout {
        id: u64,
    },
    /// The next page of every record this node stores as a replica: registers with
    /// their tags (tombstones included), then eventual sibling states
    /// (`node::backup::backup_page`). `cursor: None` starts the stream; `limit` is
    /// capped by the server. Same credential as every other frame (the client token):
    /// it reveals no more than reads of every key do.
    Backup {
        id: u64,
        cursor: Option<BackupCursor>,
        limit: u32,
    },
}

/// Server → client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerFrame {
    Welcome {
        node: u64,
    },
    Reply {
        id: u64,
        reply: ClientReply,
    },
    Status {
        id: u64,
        json: String,
    },
    Keys {
        id: u64,
        keys: Vec<Vec<u8>>,
        done: bool,
    },
    Layout {
        id: u64,
        layout: RingLayout,
    },
    /// One backup page; `next: None` ends the node's stream.
    BackupPage {
        id: u64,
        entries: Vec<SyncEntry>,
        next: Option<BackupCursor>,
    },
    /// A request this node cannot serve (a scan failed, storage failed); the
    /// connection stays open, unlike `Refused`.
    Failed {
        id: u64,
        reason: String,
    },
    /// Sent before the server closes the connection: bad token, malformed frame.
    Refused {
        reason: String,
    },
}

pub const RELAY_PREFIX: &str = "relay:";

/// The layout address of a replica attached to `host`.
pub fn relay_address(host: NodeId) -> String {
    format!("{RELAY_PREFIX}{}", host.0)
}

/// The host a `relay:` address names.
pub fn relay_host(address: &str) -> Option<NodeId> {
    address.strip_prefix(RELAY_PREFIX)?.parse().ok().map(NodeId)
}

/// Replica → host, on `/replica` (framed like the client protocol: a version byte and
/// postcard). Variants are only appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaUp {
    /// First message: the client token, the replica's node id (`None`: the host picks
    /// an id no member or attached replica has) and its identity secret (the store's,
    /// `NodeSpec::identity` is its digest): a member bound to an identity attaches only
    /// with its secret, and may then attach to any host (re-homing).
    Hello {
        token: Option<String>,
        id: Option<NodeId>,
        secret: Vec<u8>,
    },
    /// A peer frame (`protocol::encode` of a `PeerMessage`) for node `to`.
    Peer { to: NodeId, frame: Vec<u8> },
}

/// Host → replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaDown {
    /// Attached as `id`; `address` is what the replica puts in its `NodeSpec` to join.
    Welcome {
        host: NodeId,
        address: String,
        id: NodeId,
    },
    Peer {
        from: NodeId,
        frame: Vec<u8>,
    },
    /// Sent before the host closes: bad token, id taken, malformed frame.
    Refused {
        reason: String,
    },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("empty message")]
    Empty,
    #[error("client protocol version {0} (this node speaks {CLIENT_PROTOCOL_VERSION})")]
    Version(u8),
    #[error("undecodable message: {0}")]
    Decode(String),
    #[error("unencodable message: {0}")]
    Encode(String),
}

pub fn encode<T: Serialize>(frame: &T) -> Result<Vec<u8>, WireError> {
    let mut out = vec![CLIENT_PROTOCOL_VERSION];
    let body = postcard::to_allocvec(frame).map_err(|e| WireError::Encode(e.to_string()))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Never panics; trailing bytes are an error (one message, one frame).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    let (&version, body) = bytes.split_first().ok_or(WireError::Empty)?;
    if version != CLIENT_PROTOCOL_VERSION {
        return Err(WireError::Version(version));
    }
    let (frame, rest) =
        postcard::take_from_bytes(body).map_err(|e| WireError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::Decode(format!("{} trailing bytes", rest.len())));
    }
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Consistency;

    #[test]
    fn arbitrary_bytes_never_panic_and_accepted_frames_round_trip() {
        for mut input in crate::testing::parser_inputs(50_000, b"*$\r\n-:+0123456789") {
            input.insert(0, CLIENT_PROTOCOL_VERSION);
            if let Ok(frame) = decode::<ClientFrame>(&input) {
                assert_eq!(encode(&frame).ok(), Some(input.clone()));
            }
            if let Ok(frame) = decode::<ServerFrame>(&input) {
                assert_eq!(encode(&frame).ok(), Some(input.clone()));
            }
        }
    }

    #[test]
    fn round_trips_and_rejects_garbage() {
        let frame = ClientFrame::Request {
            id: 7,
            request: ClientRequest::Put {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                consistency: Consistency::Linearizable,
            },
        };
        let bytes = encode(&frame).expect("encode");
        assert_eq!(decode::<ClientFrame>(&bytes), Ok(frame));
        assert_eq!(decode::<ClientFrame>(&[]), Err(WireError::Empty));
        assert_eq!(decode::<ClientFrame>(&[9, 0]), Err(WireError::Version(9)));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode::<ClientFrame>(&trailing).is_err());
        for garbage in [&[1u8, 200, 200, 200][..], &[1, 1, 255, 255, 255, 255, 255]] {
            assert!(decode::<ClientFrame>(garbage).is_err());
        }
    }
}

//! Where a replica's `Output::Send`s go. A standalone replica has no peers: its single
//! member never addresses anyone, so `NoPeers` only counts what would have been sent.
//! Joining a cluster (the relay over WebSocket) plugs in another `Transport` and feeds
//! arriving frames to `Input::Peer`; the host is written against this trait only.

use std::cell::Cell;

use ringkv_core::node::PeerMessage;
use ringkv_core::ring::NodeId;

pub trait Transport {
    /// Hands `message` to the network. Must not call back into the replica
    /// synchronously in a way that waits for it (the host is not borrowed here, so
    /// re-entrant calls are allowed but are processed as a new turn).
    fn send(&self, to: NodeId, message: PeerMessage);
    /// Messages dropped because there was nowhere to send them.
    fn dropped(&self) -> u64 {
        0
    }
}

#[derive(Default)]
pub struct NoPeers {
    dropped: Cell<u64>,
}

impl Transport for NoPeers {
    fn send(&self, _to: NodeId, _message: PeerMessage) {
        self.dropped.set(self.dropped.get() + 1);
    }

    fn dropped(&self) -> u64 {
        self.dropped.get()
    }
}

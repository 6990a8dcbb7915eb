//! Replicas without a listener (browser and edge-worker replicas) attach to a native
//! node over `/replica` and the node relays their peer frames.
//!
//! Addressing: such a replica's `NodeSpec::address` is `relay:<host node id>`. A node
//! sending to it wraps the frame in `PeerMessage::Relayed` and sends that to the host,
//! which hands it to the attached replica; the replica's own frames go the other way.
//!
//! Impersonation: the host binds a replica's connection to the id it attached with
//! (refused if that id is a native member, or attached to another host per the
//! layout), and a receiver accepts a relayed frame as coming from replica R only from
//! the host R's layout address names. Peers are authenticated by the cluster secret;
//! replicas by the client token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ringkv_core::protocol::wire::{self, ReplicaDown};
pub use ringkv_core::protocol::wire::{relay_address, relay_host, ReplicaUp, RELAY_PREFIX};
use ringkv_core::ring::NodeId;
use tokio::sync::mpsc;

/// Replicas one node relays for, at most.
pub const ATTACHED_MAX: usize = 1024;
/// Frames waiting for one attached replica; more are dropped (a lossy link).
pub const REPLICA_QUEUE_MAX: usize = 1024;
/// The replicas attached to this node and their outgoing queues.
#[derive(Clone, Default)]
pub struct Relays {
    attached: Arc<Mutex<HashMap<NodeId, mpsc::Sender<Vec<u8>>>>>,
}

impl Relays {
    /// Attaches `id`; `None` if it is attached already or the limit is reached.
    pub fn attach(&self, id: NodeId) -> Option<mpsc::Receiver<Vec<u8>>> {
        let mut attached = self.attached.lock().unwrap_or_else(|e| e.into_inner());
        if attached.contains_key(&id) || attached.len() >= ATTACHED_MAX {
            return None;
        }
        let (sender, receiver) = mpsc::channel(REPLICA_QUEUE_MAX);
        attached.insert(id, sender);
        Some(receiver)
    }

    pub fn detach(&self, id: NodeId) {
        let mut attached = self.attached.lock().unwrap_or_else(|e| e.into_inner());
        attached.remove(&id);
    }

    pub fn is_attached(&self, id: NodeId) -> bool {
        let attached = self.attached.lock().unwrap_or_else(|e| e.into_inner());
        attached.contains_key(&id)
    }

    /// Queues `frame` from `from` for attached replica `to`; false if it is not attached
    /// or its queue is full.
    pub fn forward(&self, to: NodeId, from: NodeId, frame: Vec<u8>) -> bool {
        let Ok(bytes) = wire::encode(&ReplicaDown::Peer { from, frame }) else {
            return false;
        };
        let attached = self.attached.lock().unwrap_or_else(|e| e.into_inner());
        attached
            .get(&to)
            .is_some_and(|sender| sender.try_send(bytes).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_and_attachments_are_exclusive() {
        assert_eq!(relay_host(&relay_address(NodeId(7))), Some(NodeId(7)));
        assert_eq!(relay_host("127.0.0.1:7001"), None);
        assert_eq!(relay_host("relay:x"), None);
        let relays = Relays::default();
        let mut rx = relays.attach(NodeId(9)).expect("attach");
        assert!(relays.attach(NodeId(9)).is_none());
        assert!(relays.forward(NodeId(9), NodeId(1), vec![1, 2]));
        assert!(rx.try_recv().is_ok());
        assert!(!relays.forward(NodeId(8), NodeId(1), vec![1]));
        relays.detach(NodeId(9));
        assert!(!relays.is_attached(NodeId(9)));
    }
}

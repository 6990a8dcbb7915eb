//! The node's `Outbound`: encodes each `Output::Send` and hands it to [`Routes`] (a
//! link to the target, or a relay). Runs on the committer thread, after the turn's
//! sync; never blocks.

use std::collections::HashMap;
use std::sync::Arc;

use ringkv_core::node::{Node, PeerMessage};
use ringkv_core::protocol;
use ringkv_core::ring::NodeId;

use super::book::AddressBook;
use super::route::Routes;
use crate::server::metrics::Metrics;
use crate::server::node_host::Outbound;

pub struct PeerRouter {
    pub routes: Routes,
    pub metrics: Arc<Metrics>,
}

impl Outbound for PeerRouter {
    /// One batch frame (or a few, each within the frame limit) per destination, in
    /// the order the messages were sent.
    fn send_all(&mut self, sends: Vec<(NodeId, PeerMessage)>) {
        let mut by_peer: Vec<(NodeId, Vec<PeerMessage>)> = Vec::new();
        for (to, message) in sends {
            match by_peer.iter_mut().find(|(peer, _)| *peer == to) {
                Some((_, messages)) => messages.push(message),
                None => by_peer.push((to, vec![message])),
            }
        }
        for (to, messages) in by_peer {
            let (frames, dropped) = protocol::encode_batch(&messages);
            if dropped > 0 {
                tracing::warn!(%to, dropped, "unencodable peer messages dropped");
                self.metrics
                    .peer_sends_dropped
                    .fetch_add(dropped as u64, std::sync::atomic::Ordering::Relaxed);
            }
            let relaxed = std::sync::atomic::Ordering::Relaxed;
            self.metrics
                .peer_messages_sent
                .fetch_add(messages.len() as u64, relaxed);
            self.metrics
                .peer_frames_sent
                .fetch_add(frames.len() as u64, relaxed);
            for frame in frames {
                if !self.routes.send(self.routes.me, to, frame) {
                    self.metrics.inc(&self.metrics.peer_sends_dropped);
                }
            }
        }
    }

    fn send(&mut self, to: NodeId, message: &PeerMessage) {
        let frame = match protocol::encode(message) {
            Ok(frame) => frame,
            Err(error) => {
                // The node's limits keep its messages inside a frame; count if not.
                tracing::warn!(%to, %error, "unencodable peer message dropped");
                self.metrics.inc(&self.metrics.peer_sends_dropped);
                return;
            }
        };
        if !self.routes.send(self.routes.me, to, frame) {
            self.metrics.inc(&self.metrics.peer_sends_dropped);
        }
    }
}

/// Refreshes the address book from the node's layout (committed and pending) whenever
/// the layout history changes (its stamp). Runs on the node thread after every turn:
/// cheap otherwise.
pub fn layout_observer(book: AddressBook) -> Box<dyn FnMut(&Node) + Send> {
    let mut seen = None;
    Box::new(move |node: &Node| {
        let history = node.layout_history();
        if seen == Some(history.stamp()) {
            return;
        }
        seen = Some(history.stamp());
        let mut addresses = HashMap::new();
        let mut identities = HashMap::new();
        let layouts = std::iter::once(history.committed()).chain(history.pending());
        for layout in layouts {
            for (id, spec) in layout.nodes() {
                if !spec.address.is_empty() {
                    addresses.insert(*id, spec.address.clone());
                }
                if let Some(identity) = spec.identity {
                    identities.insert(*id, identity);
                }
            }
        }
        book.set_layout(addresses, identities);
    })
}

//! The node's `Outbound`: encodes each `Output::Send` and hands it to [`Routes`] (a
//! link to the target, or a relay). Runs on the node thread; never blocks.

use std::collections::HashMap;
use std::sync::Arc;

use ringkv_core::node::{Node, PeerMessage};
use ringkv_core::protocol;
use ringkv_core::ring::NodeId;

use super::route::Routes;
use crate::server::metrics::Metrics;
use crate::server::node_host::Outbound;

pub struct PeerRouter {
    pub routes: Routes,
    pub metrics: Arc<Metrics>,
    /// The layout epoch the book was last filled from.
    pub layout_epoch: Option<u64>,
}

impl Outbound for PeerRouter {
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

    fn observe(&mut self, node: &Node) {
        // Called every turn: cheap unless the layout changed.
        let history = node.layout_history();
        if self.layout_epoch == Some(history.stamp()) {
            return;
        }
        self.layout_epoch = Some(history.stamp());
        let mut addresses = HashMap::new();
        let layouts = std::iter::once(history.committed()).chain(history.pending());
        for layout in layouts {
            for (id, spec) in layout.nodes() {
                if !spec.address.is_empty() {
                    addresses.insert(*id, spec.address.clone());
                }
            }
        }
        self.routes.book.set_layout(addresses);
    }
}

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

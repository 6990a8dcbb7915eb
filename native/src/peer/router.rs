//! The node's `Outbound`: encodes each `Output::Send` and queues it on the link to its
//! target, starting the link on first use. Runs on the node thread; never blocks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ringkv_core::node::{Node, PeerMessage};
use ringkv_core::protocol;
use ringkv_core::ring::NodeId;
use tokio::sync::mpsc;

use super::auth::PeerAuth;
use super::book::AddressBook;
use super::link::{Link, LINK_QUEUE_MAX};
use crate::server::metrics::Metrics;
use crate::server::node_host::Outbound;
use crate::server::shutdown::Shutdown;

pub struct PeerRouter {
    pub runtime: tokio::runtime::Handle,
    pub book: AddressBook,
    /// `None` without a cluster secret: such a node talks to no peer.
    pub auth: Option<PeerAuth>,
    pub metrics: Arc<Metrics>,
    pub shutdown: Shutdown,
    pub handshake_timeout: Duration,
    pub frame_size_bytes_max: usize,
    pub links: HashMap<NodeId, mpsc::Sender<Vec<u8>>>,
    pub tls: Option<crate::server::tls::Tls>,
}

impl PeerRouter {
    fn link(&mut self, to: NodeId) -> Option<&mpsc::Sender<Vec<u8>>> {
        let auth = self.auth.clone()?;
        if !self.links.contains_key(&to) {
            let (sender, queue) = mpsc::channel(LINK_QUEUE_MAX);
            let link = Link {
                to,
                book: self.book.clone(),
                auth,
                queue,
                metrics: self.metrics.clone(),
                shutdown: self.shutdown.clone(),
                handshake_timeout: self.handshake_timeout,
                frame_size_bytes_max: self.frame_size_bytes_max,
                tls: self.tls.clone(),
            };
            self.runtime.spawn(link.run());
            self.links.insert(to, sender);
        }
        self.links.get(&to)
    }
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
        let metrics = self.metrics.clone();
        match self.link(to) {
            Some(link) => {
                if link.try_send(frame).is_err() {
                    metrics.inc(&metrics.peer_sends_dropped);
                }
            }
            None => metrics.inc(&metrics.peer_sends_dropped),
        }
    }
}

/// Refreshes the address book from the node's layout (committed and pending) whenever
/// the layout epoch changes. Runs on the node thread after every turn: cheap otherwise.
pub fn layout_observer(book: AddressBook) -> Box<dyn FnMut(&Node) + Send> {
    let mut seen: Option<u64> = None;
    Box::new(move |node: &Node| {
        let history = node.layout_history();
        if seen == Some(history.epoch()) {
            return;
        }
        seen = Some(history.epoch());
        let mut addresses = HashMap::new();
        let layouts = std::iter::once(history.committed()).chain(history.pending());
        for layout in layouts {
            for (id, spec) in layout.nodes() {
                if !spec.address.is_empty() {
                    addresses.insert(*id, spec.address.clone());
                }
            }
        }
        book.set_layout(addresses);
    })
}

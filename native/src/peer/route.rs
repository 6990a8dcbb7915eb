//! Where a frame goes: the link to a native peer, an attached replica, or (wrapped in
//! `PeerMessage::Relayed`) the host of a replica attached elsewhere. Shared by the node
//! thread (`router`) and the `/replica` sessions, which both send through it; never
//! blocks (bounded queues, full means dropped).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringkv_core::node::PeerMessage;
use ringkv_core::protocol;
use ringkv_core::ring::NodeId;
use tokio::sync::mpsc;

use super::auth::PeerAuth;
use super::book::AddressBook;
use super::link::{Link, LINK_QUEUE_MAX};
use super::relay::{relay_host, Relays};
use crate::server::metrics::Metrics;
use crate::server::shutdown::Shutdown;
use crate::server::tls::Tls;

/// What a new link needs.
#[derive(Clone)]
pub struct LinkSettings {
    pub runtime: tokio::runtime::Handle,
    /// `None` without a cluster secret: such a node talks to no peer.
    pub auth: Option<PeerAuth>,
    pub metrics: Arc<Metrics>,
    pub shutdown: Shutdown,
    pub handshake_timeout: Duration,
    pub frame_size_bytes_max: usize,
    pub tls: Option<Tls>,
}

#[derive(Clone)]
pub struct Routes {
    pub me: NodeId,
    pub book: AddressBook,
    pub relays: Relays,
    settings: LinkSettings,
    links: Arc<Mutex<HashMap<NodeId, mpsc::Sender<Vec<u8>>>>>,
}

impl Routes {
    pub fn new(me: NodeId, book: AddressBook, relays: Relays, settings: LinkSettings) -> Self {
        Routes {
            me,
            book,
            relays,
            settings,
            links: Arc::default(),
        }
    }

    /// The host relaying for `id`, if its address is a `relay:` one.
    pub fn host_of(&self, id: NodeId) -> Option<NodeId> {
        relay_host(&self.book.address(id)?)
    }

    /// Sends `frame` (an encoded message from `from`: this node, or a replica attached
    /// here) to `to`. Returns false if it was dropped.
    pub fn send(&self, from: NodeId, to: NodeId, frame: Vec<u8>) -> bool {
        if self.relays.is_attached(to) {
            return self.relays.forward(to, from, frame);
        }
        let host = self.host_of(to);
        if from == self.me && host.is_none() {
            return self.send_on_link(to, frame);
        }
        // A replica's frame, or a frame for a replica attached elsewhere: wrapped, to
        // the replica's host or straight to the native receiver.
        let next = host.unwrap_or(to);
        if next == self.me {
            // For a replica said to be attached here that is not (it went away).
            return false;
        }
        let envelope = PeerMessage::Relayed { from, to, frame };
        match protocol::encode(&envelope) {
            Ok(bytes) => self.send_on_link(next, bytes),
            Err(_) => false,
        }
    }

    fn send_on_link(&self, to: NodeId, frame: Vec<u8>) -> bool {
        let Some(auth) = self.settings.auth.clone() else {
            return false;
        };
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        let sender = links.entry(to).or_insert_with(|| {
            let (sender, queue) = mpsc::channel(LINK_QUEUE_MAX);
            let s = &self.settings;
            let link = Link {
                to,
                book: self.book.clone(),
                auth,
                queue,
                metrics: s.metrics.clone(),
                shutdown: s.shutdown.clone(),
                handshake_timeout: s.handshake_timeout,
                frame_size_bytes_max: s.frame_size_bytes_max,
                tls: s.tls.clone(),
            };
            s.runtime.spawn(link.run());
            sender
        });
        sender.try_send(frame).is_ok()
    }
}

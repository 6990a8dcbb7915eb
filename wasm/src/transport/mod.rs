//! Where a replica's `Output::Send`s go, and how arriving frames reach it.
//!
//! - [`NoPeers`]: a standalone replica; its single member never addresses anyone.
//! - [`js::JsTransport`]: a network written in JS (`{ send(to, frame) }`, frames come
//!   back through `replica.deliver(from, frame)`): in-page clusters, tests, custom links.
//! - [`relay::RelayTransport`]: a WebSocket to a native node's `/replica` endpoint,
//!   which relays frames to and from the rest of the cluster.
//!
//! The host is written against this trait only.

pub mod js;
pub mod relay;

use std::cell::{Cell, RefCell};
use std::rc::Weak;

use ringkv_core::node::PeerMessage;
use ringkv_core::ring::NodeId;
use serde::Serialize;

use crate::host::Host;

pub trait Transport {
    /// Hands `message` to the network (best effort: the protocol tolerates loss). Called
    /// with the host not borrowed, so a transport may deliver into any replica.
    fn send(&self, to: NodeId, message: PeerMessage);
    /// Messages dropped because there was nowhere to send them.
    fn dropped(&self) -> u64 {
        0
    }
    /// Called once by the host it serves; transports that receive on their own (the
    /// relay) deliver into it.
    fn bind(&self, _host: Weak<RefCell<Host>>) {}
    /// The replica closed or failed: release connections, stop reconnecting.
    fn close(&self) {}
    fn state(&self) -> TransportState {
        TransportState {
            kind: "none",
            connected: false,
            host: None,
            url: None,
            attachments: 0,
            last_error: None,
        }
    }
}

/// `status().transport`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransportState {
    pub kind: &'static str,
    pub connected: bool,
    /// The relay: the native node this replica is attached to.
    pub host: Option<u64>,
    pub url: Option<String>,
    /// The relay: successful attachments since open (more than 1 means reconnects).
    pub attachments: u64,
    pub last_error: Option<String>,
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

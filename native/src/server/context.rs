//! What every connection handler needs, shared read-only.

use std::sync::Arc;

use crate::config::Limits;
use crate::peer::auth::PeerAuth;
use crate::peer::book::AddressBook;
use crate::peer::route::Routes;

use super::metrics::Metrics;
use super::node_host::NodeHandle;
use super::shards::Shards;
use super::shutdown::Shutdown;
use super::tls::Tls;

pub struct Context {
    /// This shard (the process's only one without `--shards`).
    pub node: NodeHandle,
    /// Every shard of the process: client requests go where `Shards::route` says.
    pub shards: Arc<Shards>,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    pub auth_token: Option<String>,
    pub peer_auth: Option<PeerAuth>,
    pub book: AddressBook,
    /// Where frames go (links, attached replicas, relays): `peer/route.rs`.
    pub routes: Routes,
    pub shutdown: Shutdown,
    /// TLS on every listener, when configured.
    pub tls: Option<Tls>,
}

impl Context {
    /// The shard that coordinates `request` (`shards.rs`).
    pub fn route(&self, request: &ringkv_core::node::ClientRequest) -> &NodeHandle {
        self.shards.route(request)
    }

    /// Whether `presented` is the configured client token (always true without one).
    pub fn token_ok(&self, presented: Option<&[u8]>) -> bool {
        match (&self.auth_token, presented) {
            (None, _) => true,
            (Some(token), Some(presented)) => {
                crate::peer::auth::constant_time_eq(token.as_bytes(), presented)
            }
            (Some(_), None) => false,
        }
    }
}

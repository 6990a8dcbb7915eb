//! What every connection handler needs, shared read-only.

use std::sync::Arc;

use crate::config::Limits;
use crate::peer::auth::PeerAuth;
use crate::peer::book::AddressBook;
use crate::peer::route::Routes;

use super::metrics::Metrics;
use super::node_host::NodeHandle;
use super::shutdown::Shutdown;
use super::tls::Tls;

pub struct Context {
    pub node: NodeHandle,
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

//! Peer addresses: the one place the transport asks "where is node X?". In order:
//! 1. local overrides (`--peer-address ID=HOST:PORT`: this node dials X there, e.g.
//!    through a proxy or NAT; never shared with the cluster);
//! 2. what X itself announced when it last dialed us (authenticated by the handshake's
//!    MAC): fresher than the layout when X restarted on a new address;
//! 3. the layout: each member's `NodeSpec::address`, committed and pending layouts,
//!    refreshed whenever the node's layout epoch changes (`router::PeerRouter::observe`);
//! 4. hints learned outside the layout: the seeds a joining node contacted (their id
//!    comes from the client protocol's `Welcome`), so it can answer them before it
//!    has the layout.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ringkv_core::ring::{IdentityDigest, NodeId};

#[derive(Default)]
struct Entries {
    overrides: HashMap<NodeId, String>,
    /// What authenticated peers said they listen on when they last dialed us.
    announced: HashMap<NodeId, String>,
    layout: HashMap<NodeId, String>,
    /// Identities members are bound to in the layout (`NodeSpec::identity`): who may
    /// attach as a relayed member.
    identities: HashMap<NodeId, IdentityDigest>,
    hints: HashMap<NodeId, String>,
}

#[derive(Clone, Default)]
pub struct AddressBook {
    entries: Arc<RwLock<Entries>>,
}

impl AddressBook {
    pub fn new(overrides: HashMap<NodeId, String>, layout: HashMap<NodeId, String>) -> Self {
        let book = AddressBook::default();
        {
            let mut entries = book.entries.write().unwrap_or_else(|e| e.into_inner());
            entries.overrides = overrides;
            entries.layout = layout;
        }
        book
    }

    pub fn address(&self, id: NodeId) -> Option<String> {
        // A poisoned lock only means a writer panicked while replacing a plain map; the
        // maps themselves are still whole.
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .overrides
            .get(&id)
            .or_else(|| entries.announced.get(&id))
            .or_else(|| entries.layout.get(&id))
            .or_else(|| entries.hints.get(&id))
            .cloned()
    }

    /// Replaces the layout's addresses (empty addresses are skipped by the caller) and
    /// its members' identities.
    pub fn set_layout(
        &self,
        layout: HashMap<NodeId, String>,
        identities: HashMap<NodeId, IdentityDigest>,
    ) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.layout = layout;
        entries.identities = identities;
    }

    /// Whether `id` is a member of the layout (committed or pending), and the identity
    /// it is bound to.
    pub fn layout_member(&self, id: NodeId) -> Option<(String, Option<IdentityDigest>)> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let address = entries.layout.get(&id)?.clone();
        Some((address, entries.identities.get(&id).copied()))
    }

    /// Remembers where an authenticated peer says it listens (its hello): newer than
    /// the layout when a member restarted on a new address.
    pub fn announced(&self, id: NodeId, address: String) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        // Bounded: one entry per node id that authenticated.
        if entries.announced.len() < 4096 || entries.announced.contains_key(&id) {
            entries.announced.insert(id, address);
        }
    }

    /// Remembers where a node was reached outside the layout (a seed).
    pub fn hint(&self, id: NodeId, address: String) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        // Bounded: hints only come from the configured seed list.
        if entries.hints.len() < 1024 {
            entries.hints.insert(id, address);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_over_layout_over_hints() {
        let book = AddressBook::new(
            HashMap::from([(NodeId(1), "proxy:1".to_string())]),
            HashMap::from([
                (NodeId(1), "real:1".to_string()),
                (NodeId(2), "real:2".to_string()),
            ]),
        );
        book.hint(NodeId(2), "seed:2".into());
        book.hint(NodeId(3), "seed:3".into());
        assert_eq!(book.address(NodeId(1)).as_deref(), Some("proxy:1"));
        assert_eq!(book.address(NodeId(2)).as_deref(), Some("real:2"));
        assert_eq!(book.address(NodeId(3)).as_deref(), Some("seed:3"));
        assert_eq!(book.address(NodeId(4)), None);
        book.set_layout(HashMap::new(), HashMap::new());
        assert_eq!(book.address(NodeId(2)).as_deref(), Some("seed:2"));
    }
}

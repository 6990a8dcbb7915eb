//! Peer addresses: the one place the transport asks "where is node X?". Filled from the
//! static member list now; refreshed from the node's ring layout when layouts carry
//! addresses (see `router::PeerRouter::observe`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ringkv_core::ring::NodeId;

use crate::config::Member;

#[derive(Clone, Default)]
pub struct AddressBook {
    entries: Arc<RwLock<HashMap<NodeId, String>>>,
}

impl AddressBook {
    pub fn from_members(members: &[Member]) -> Self {
        let book = AddressBook::default();
        book.replace(
            members
                .iter()
                .map(|member| (member.id, member.address.clone()))
                .collect(),
        );
        book
    }

    pub fn address(&self, id: NodeId) -> Option<String> {
        // A poisoned lock only means a writer panicked mid-replace of a plain map;
        // the map itself is still whole.
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(&id).cloned()
    }

    pub fn replace(&self, entries: HashMap<NodeId, String>) {
        let mut guard = self.entries.write().unwrap_or_else(|e| e.into_inner());
        *guard = entries;
    }
}

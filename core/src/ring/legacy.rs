//! Layouts as builds before member identities (`NodeSpec::identity`) wrote them: the
//! `m/members` and `m/paxos` records of an older store decode through these types, and
//! their members come back unbound (`identity: None`). (`Serialize` only because the
//! record enums derive it; these forms are never written.)

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::history::LayoutHistory;
use super::layout::RingLayout;
use super::node::{NodeId, NodeSpec};

#[derive(Serialize, Deserialize)]
struct SpecV1 {
    id: NodeId,
    zone: String,
    capacity: u32,
    address: String,
}

/// A `RingLayout` of format 1.
#[derive(Serialize, Deserialize)]
pub(crate) struct LayoutV1 {
    version: u64,
    replicas: u64,
    vnodes_per_capacity_unit: u32,
    nodes: Vec<SpecV1>,
}

impl LayoutV1 {
    pub fn upgrade(self) -> Result<RingLayout, String> {
        let replicas = usize::try_from(self.replicas).map_err(|e| e.to_string())?;
        let nodes = self.nodes.into_iter().map(|spec| NodeSpec {
            id: spec.id,
            zone: spec.zone,
            capacity: spec.capacity,
            address: spec.address,
            identity: None,
        });
        RingLayout::from_parts(self.version, replicas, self.vnodes_per_capacity_unit, nodes)
            .map_err(|e| e.to_string())
    }
}

/// A `LayoutHistory` of format 1.
#[derive(Serialize, Deserialize)]
pub(crate) struct HistoryV1 {
    committed: LayoutV1,
    pending: Option<LayoutV1>,
    synced: Vec<NodeId>,
}

impl HistoryV1 {
    pub fn upgrade(self) -> Result<LayoutHistory, String> {
        let pending = self.pending.map(LayoutV1::upgrade).transpose()?;
        LayoutHistory::from_parts(
            self.committed.upgrade()?,
            pending,
            self.synced.into_iter().collect::<BTreeSet<_>>(),
        )
        .map_err(|e| e.to_string())
    }
}

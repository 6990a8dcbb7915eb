//! Layouts as older builds wrote them: format 1, before member identities
//! (`NodeSpec::identity`; members come back unbound, `identity: None`), and format 2,
//! before the purge floor (`RingLayout::purge_floor`; comes back 0), histories of
//! format 3, before fences (`LayoutHistory::fences`; come back with none), and of format
//! 4, before claims (`LayoutHistory::claims`: the synced members are held). Layouts of
//! format 3 are those before processes (`NodeSpec::process`; members come back each
//! its own process, so every key keeps its replicas); histories of format 5 hold them.
//! The `m/members` and `m/paxos` records of an older store decode through these types.
//! (`Serialize` only because the record enums derive it; these forms are never
//! written.)

use std::collections::BTreeSet;

use super::history::Fence;

use serde::{Deserialize, Serialize};

use super::history::{HistoryWire, LayoutHistory};
use super::layout::RingLayout;
use super::node::{IdentityDigest, NodeId, NodeSpec};

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
            process: None,
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

/// A `NodeSpec` of layout formats 2 and 3 (identities, no process).
#[derive(Serialize, Deserialize)]
struct SpecV2 {
    id: NodeId,
    zone: String,
    capacity: u32,
    address: String,
    identity: Option<IdentityDigest>,
}

impl SpecV2 {
    /// Its own process: where every member was before processes.
    fn upgrade(self) -> NodeSpec {
        NodeSpec {
            id: self.id,
            zone: self.zone,
            capacity: self.capacity,
            address: self.address,
            identity: self.identity,
            process: None,
        }
    }
}

/// A `RingLayout` of format 2.
#[derive(Serialize, Deserialize)]
pub(crate) struct LayoutV2 {
    version: u64,
    replicas: u64,
    vnodes_per_capacity_unit: u32,
    nodes: Vec<SpecV2>,
}

impl LayoutV2 {
    pub fn upgrade(self) -> Result<RingLayout, String> {
        LayoutV3 {
            version: self.version,
            replicas: self.replicas,
            vnodes_per_capacity_unit: self.vnodes_per_capacity_unit,
            nodes: self.nodes,
            purge_floor: 0,
        }
        .upgrade()
    }
}

/// A `RingLayout` of format 3 (purge floor, no processes).
#[derive(Serialize, Deserialize)]
pub(crate) struct LayoutV3 {
    version: u64,
    replicas: u64,
    vnodes_per_capacity_unit: u32,
    nodes: Vec<SpecV2>,
    purge_floor: u64,
}

impl LayoutV3 {
    pub fn upgrade(self) -> Result<RingLayout, String> {
        let replicas = usize::try_from(self.replicas).map_err(|e| e.to_string())?;
        RingLayout::from_parts(
            self.version,
            replicas,
            self.vnodes_per_capacity_unit,
            self.nodes.into_iter().map(SpecV2::upgrade),
        )
        .map(|layout| layout.with_purge_floor_set(self.purge_floor))
        .map_err(|e| e.to_string())
    }
}

/// A `LayoutHistory` of format 5: the current history of format 3 layouts.
pub(crate) type HistoryV5 = HistoryWire<LayoutV3>;

impl HistoryV5 {
    pub fn upgrade(self) -> Result<LayoutHistory, String> {
        let wire = self.try_map_layouts(LayoutV3::upgrade)?;
        LayoutHistory::try_from(wire).map_err(|e| e.to_string())
    }
}

/// A `LayoutHistory` of format 2.
#[derive(Serialize, Deserialize)]
pub(crate) struct HistoryV2 {
    committed: LayoutV2,
    pending: Option<LayoutV2>,
    synced: Vec<NodeId>,
    committed_by: Vec<NodeId>,
}

impl HistoryV2 {
    pub fn upgrade(self) -> Result<LayoutHistory, String> {
        let pending = self.pending.map(LayoutV2::upgrade).transpose()?;
        let committed = self.committed.upgrade()?;
        history_of(committed, pending, self.synced, self.committed_by)
    }
}

/// A current history from the parts older formats store.
fn history_of(
    committed: RingLayout,
    pending: Option<RingLayout>,
    synced: Vec<NodeId>,
    committed_by: Vec<NodeId>,
) -> Result<LayoutHistory, String> {
    let history =
        LayoutHistory::from_parts(committed, pending, synced).map_err(|e| e.to_string())?;
    if history.pending().is_some() {
        return Ok(history);
    }
    let by = committed_by.into_iter().collect();
    Ok(LayoutHistory::committed_by_members(
        history.committed().clone(),
        by,
    ))
}

/// A `LayoutHistory` of format 3 (format 3 layouts, no fences).
#[derive(Serialize, Deserialize)]
pub(crate) struct HistoryV3 {
    committed: LayoutV3,
    pending: Option<LayoutV3>,
    synced: Vec<NodeId>,
    committed_by: Vec<NodeId>,
}

impl HistoryV3 {
    pub fn upgrade(self) -> Result<LayoutHistory, String> {
        let pending = self.pending.map(LayoutV3::upgrade).transpose()?;
        history_of(
            self.committed.upgrade()?,
            pending,
            self.synced,
            self.committed_by,
        )
    }
}

/// A `Fence` of history format 4 (before `excludes`).
#[derive(Serialize, Deserialize)]
pub(crate) struct FenceV1 {
    served: BTreeSet<NodeId>,
    gone: BTreeSet<NodeId>,
}

/// A `LayoutHistory` of format 4 (format 3 layouts, fences, no claims).
#[derive(Serialize, Deserialize)]
pub(crate) struct HistoryV4 {
    committed: LayoutV3,
    pending: Option<LayoutV3>,
    synced: Vec<NodeId>,
    committed_by: Vec<NodeId>,
    fences: Vec<(NodeId, FenceV1)>,
}

impl HistoryV4 {
    /// A format 4 fence meant that its member never syncs afterwards, unless it had; it
    /// comes back excluding that member's own claim if it is not synced here, and no
    /// other (so it rules out nothing it did not before).
    pub fn upgrade(self) -> Result<LayoutHistory, String> {
        let synced: BTreeSet<NodeId> = self.synced.iter().copied().collect();
        let fences = self
            .fences
            .into_iter()
            .map(|(id, fence)| {
                let mut excludes = BTreeSet::new();
                if !synced.contains(&id) {
                    excludes.insert(id);
                }
                let fence = Fence {
                    served: fence.served,
                    gone: fence.gone,
                    excludes,
                };
                (id, fence)
            })
            .collect();
        let pending = self.pending.map(LayoutV3::upgrade).transpose()?;
        let history = history_of(
            self.committed.upgrade()?,
            pending,
            self.synced,
            self.committed_by,
        )?;
        Ok(history.with_fences(fences))
    }
}

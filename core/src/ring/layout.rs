//! The versioned member list and the token ring derived from it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use super::error::LayoutError;
use super::node::{Domain, NodeId, NodeSpec, ProcessId};
use super::token::{token_position, Position};

/// Replication factor N unless configured otherwise.
pub const DEFAULT_REPLICAS: usize = 3;
/// Tokens per capacity unit. Measured (`examples/ring_report.rs`, `docs/ring.md`): with
/// 512, 5 equal nodes stay at max/mean load <= 1.10 for all of 200 random node-id sets
/// (worst 1.080, p95 1.058); 256 exceeds 1.10 for about 2% of id sets, 128 for 9%.
/// Tokens are cheap (16 bytes; lookups are a binary search), so we take the margin.
pub const DEFAULT_VNODES_PER_CAPACITY_UNIT: u32 = 512;
/// Upper bound on one node's tokens (`capacity * vnodes_per_capacity_unit`): capacity
/// 32 at the default 512 per unit. Keeps a bogus capacity from allocating without bound.
pub const TOKENS_PER_NODE_MAX: u64 = 1 << 14;
/// Upper bound on the whole ring's tokens: 512 nodes of capacity 1 at the default 512
/// per unit. The ring is derived from a layout only when it is first used (never while
/// decoding a frame), and this bounds that work: 16 bytes a token (4 MiB), one hash
/// each and a sort.
pub const TOKENS_TOTAL_MAX: u64 = 1 << 18;
/// Upper bound on a layout's members (token holders or not).
pub const NODES_MAX: usize = 4096;

/// Bits of a register tag counter below the layout epoch: a coordinator issues tags of
/// an operation started at epoch `e` with counter `>= e << EPOCH_TAG_SHIFT`
/// (`node/tags.rs`), so a tag counter `< e << EPOCH_TAG_SHIFT` was issued at an epoch
/// before `e`, and its `Write`s are refused by every replica that knows `e`.
pub const EPOCH_TAG_SHIFT: u32 = 32;

/// The lowest tag counter an operation at `epoch` may issue.
pub fn epoch_tag_base(epoch: u64) -> u64 {
    if epoch >> (u64::BITS - EPOCH_TAG_SHIFT) != 0 {
        return u64::MAX;
    }
    epoch << EPOCH_TAG_SHIFT
}

/// The purge floor a purge change after layout `version` sets: every tag issued before
/// that version (`epoch_tag_base(version) - 1`).
pub fn purge_floor_for(version: u64) -> u64 {
    epoch_tag_base(version).saturating_sub(1)
}

/// The cluster's ring: who is a member, with which weight and zone, and the replication
/// factor. Immutable: changes return a new layout with `version + 1`.
///
/// Everything else (tokens, zone count) is a pure function of `(nodes,
/// vnodes_per_capacity_unit)`, so two members holding layouts with equal fields route
/// every key identically, whatever order nodes were added in. Deciding *which* layout
/// wins when two members propose different layouts with the same version is the
/// membership layer's job (this type only guarantees the bump).
///
/// Equality compares the defining fields only; the derived ring is computed on first
/// use (so decoding a layout costs time proportional to its encoded size) and shared by
/// clones.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "LayoutWire", into = "LayoutWire")]
pub struct RingLayout {
    version: u64,
    nodes: BTreeMap<NodeId, NodeSpec>,
    replicas: usize,
    vnodes_per_capacity_unit: u32,
    /// Register tombstones whose tag counter is `<=` this may be dropped (`node/purge/`):
    /// raised only by a purge change, chosen after every member confirmed that every
    /// replica holds them. Routing ignores it.
    purge_floor: u64,
    /// Derived from the fields above on first use. Must be replaced (never kept) by
    /// anything that changes `nodes` or `vnodes_per_capacity_unit`.
    derived: Arc<OnceLock<Derived>>,
}

/// What a layout's ring is, computed from its member list.
#[derive(Debug)]
struct Derived {
    /// Every vnode as `(position, owner)`, sorted by position then owner (the owner
    /// breaks ties of colliding positions deterministically).
    tokens: Vec<(Position, NodeId)>,
    /// Distinct zones among nodes that hold at least one token.
    zone_count: usize,
    /// Distinct failure domains (processes, `NodeSpec::domain`) among nodes that hold
    /// at least one token: the most replicas a key can have.
    domain_count: usize,
}

// The defining fields only: the derived ring is large, and whether it was computed yet
// must not show (traces are hashed for determinism).
impl std::fmt::Debug for RingLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingLayout")
            .field("version", &self.version)
            .field("nodes", &self.nodes)
            .field("replicas", &self.replicas)
            .field("vnodes_per_capacity_unit", &self.vnodes_per_capacity_unit)
            .field("purge_floor", &self.purge_floor)
            .finish()
    }
}

impl PartialEq for RingLayout {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version
            && self.replicas == other.replicas
            && self.vnodes_per_capacity_unit == other.vnodes_per_capacity_unit
            && self.nodes == other.nodes
            && self.purge_floor == other.purge_floor
    }
}

impl Eq for RingLayout {}

impl RingLayout {
    /// Empty layout, version 0, default vnodes. `replicas` 0 is raised to 1.
    pub fn new(replicas: usize) -> Self {
        RingLayout {
            version: 0,
            nodes: BTreeMap::new(),
            replicas: replicas.max(1),
            vnodes_per_capacity_unit: DEFAULT_VNODES_PER_CAPACITY_UNIT,
            purge_floor: 0,
            derived: Arc::default(),
        }
    }

    /// A layout from all its parts (e.g. received from a peer). Fails on the limits
    /// documented on [`LayoutError`].
    pub fn from_parts(
        version: u64,
        replicas: usize,
        vnodes_per_capacity_unit: u32,
        nodes: impl IntoIterator<Item = NodeSpec>,
    ) -> Result<Self, LayoutError> {
        if replicas == 0 {
            return Err(LayoutError::ReplicasOutOfRange(0));
        }
        if vnodes_per_capacity_unit == 0
            || u64::from(vnodes_per_capacity_unit) > TOKENS_PER_NODE_MAX
        {
            return Err(LayoutError::VnodesOutOfRange(vnodes_per_capacity_unit));
        }
        let mut by_id = BTreeMap::new();
        for spec in nodes {
            if by_id.len() >= NODES_MAX {
                return Err(LayoutError::TooManyNodes);
            }
            if by_id.insert(spec.id, spec.clone()).is_some() {
                return Err(LayoutError::DuplicateNode(spec.id));
            }
        }
        let mut layout = RingLayout {
            version,
            nodes: by_id,
            replicas,
            vnodes_per_capacity_unit,
            purge_floor: 0,
            derived: Arc::default(),
        };
        layout.rebuild()?;
        Ok(layout)
    }

    /// This layout with `purge_floor` set (decoding; tests).
    pub fn with_purge_floor_set(mut self, purge_floor: u64) -> RingLayout {
        self.purge_floor = purge_floor;
        self
    }

    /// The purge change after this layout: the same members, version + 1, and every
    /// tombstone written before this version may be dropped ([`purge_floor_for`]). The
    /// proposer must hold every member's confirmation for this version (`node/purge/`).
    pub fn purged(&self) -> Result<RingLayout, LayoutError> {
        let mut next = self.next_version()?;
        next.purge_floor = purge_floor_for(self.version).max(self.purge_floor);
        Ok(next)
    }

    /// See the field.
    pub fn purge_floor(&self) -> u64 {
        self.purge_floor
    }

    /// This layout plus `spec`, or with `spec` replacing the node of the same id (zone or
    /// capacity change). Returns an identical layout (same version) if nothing changes.
    pub fn with_node(&self, spec: NodeSpec) -> Result<RingLayout, LayoutError> {
        if self.nodes.get(&spec.id) == Some(&spec) {
            return Ok(self.clone());
        }
        let mut next = self.next_version()?;
        if next.nodes.len() >= NODES_MAX && !next.nodes.contains_key(&spec.id) {
            return Err(LayoutError::TooManyNodes);
        }
        next.nodes.insert(spec.id, spec);
        next.rebuild()?;
        Ok(next)
    }

    /// This layout without node `id`. Returns an identical layout if `id` is absent.
    pub fn without_node(&self, id: NodeId) -> Result<RingLayout, LayoutError> {
        if !self.nodes.contains_key(&id) {
            return Ok(self.clone());
        }
        let mut next = self.next_version()?;
        next.nodes.remove(&id);
        next.rebuild()?;
        Ok(next)
    }

    /// This layout under another version, nothing else changed: what an aborted change
    /// leaves committed (`LayoutHistory`, the abort takes the aborted change's version
    /// + 1, so every node's epoch still only grows).
    pub fn renumbered(&self, version: u64) -> RingLayout {
        RingLayout {
            version,
            ..self.clone()
        }
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn replicas(&self) -> usize {
        self.replicas
    }

    pub fn vnodes_per_capacity_unit(&self) -> u32 {
        self.vnodes_per_capacity_unit
    }

    pub fn nodes(&self) -> &BTreeMap<NodeId, NodeSpec> {
        &self.nodes
    }

    pub fn node(&self, id: NodeId) -> Option<&NodeSpec> {
        self.nodes.get(&id)
    }

    /// All vnodes, sorted by position (ties by node id). Computed on the first call.
    pub fn tokens(&self) -> &[(Position, NodeId)] {
        &self.derived().tokens
    }

    /// Distinct zones among nodes that hold tokens.
    pub fn zone_count(&self) -> usize {
        self.derived().zone_count
    }

    /// Distinct failure domains (processes) among nodes that hold tokens. Equals
    /// [`RingLayout::token_holder_count`] when every member is its own process.
    pub fn domain_count(&self) -> usize {
        self.derived().domain_count
    }

    /// How many replicas every key has: N, or fewer when fewer processes hold tokens
    /// (a process never holds two replicas of a key).
    pub fn replicas_per_key(&self) -> usize {
        self.replicas.min(self.domain_count())
    }

    fn derived(&self) -> &Derived {
        self.derived.get_or_init(|| {
            // Within the limits `rebuild` checked: at most TOKENS_TOTAL_MAX tokens.
            let total: usize = self
                .nodes
                .values()
                .map(|spec| spec.capacity.saturating_mul(self.vnodes_per_capacity_unit) as usize)
                .sum();
            let mut tokens = Vec::with_capacity(total);
            let mut zones = BTreeSet::new();
            let mut domains = BTreeSet::new();
            for spec in self.nodes.values() {
                let count = spec.capacity.saturating_mul(self.vnodes_per_capacity_unit);
                tokens.extend((0..count).map(|index| (token_position(spec.id, index), spec.id)));
                if count > 0 {
                    zones.insert(spec.zone.as_str());
                    domains.insert(spec.domain());
                }
            }
            tokens.sort_unstable();
            Derived {
                tokens,
                zone_count: zones.len(),
                domain_count: domains.len(),
            }
        })
    }

    /// Nodes holding at least one token (capacity > 0).
    pub fn token_holder_count(&self) -> usize {
        self.nodes.values().filter(|spec| spec.capacity > 0).count()
    }

    fn next_version(&self) -> Result<RingLayout, LayoutError> {
        let version = self
            .version
            .checked_add(1)
            .ok_or(LayoutError::VersionExhausted)?;
        Ok(RingLayout {
            version,
            ..self.clone()
        })
    }

    /// Enforces the token limits and one zone per process, and drops the derived ring
    /// (recomputed on first use).
    fn rebuild(&mut self) -> Result<(), LayoutError> {
        let per_unit = u64::from(self.vnodes_per_capacity_unit);
        let mut total: u64 = 0;
        // The first member seen of each process: the others must share its zone.
        let mut process_zones: BTreeMap<ProcessId, &NodeSpec> = BTreeMap::new();
        for spec in self.nodes.values() {
            if let Domain::Process(process) = spec.domain() {
                let first = *process_zones.entry(process).or_insert(spec);
                if first.zone != spec.zone {
                    return Err(LayoutError::ProcessSpansZones {
                        process,
                        first: first.zone.clone(),
                        first_member: first.id,
                        second: spec.zone.clone(),
                        second_member: spec.id,
                    });
                }
            }
            let count = u64::from(spec.capacity) * per_unit;
            if count > TOKENS_PER_NODE_MAX {
                return Err(LayoutError::TooManyTokens {
                    node: spec.id,
                    tokens: count,
                });
            }
            total = total.saturating_add(count);
        }
        if total > TOKENS_TOTAL_MAX {
            return Err(LayoutError::RingTooLarge { tokens: total });
        }
        self.derived = Arc::default();
        Ok(())
    }
}

/// Serialized form: only the inputs; limits are re-checked on decode and tokens derived
/// on first use, so a peer cannot send a ring inconsistent with its member list, and
/// decoding costs time proportional to the bytes.
#[derive(Serialize, Deserialize)]
struct LayoutWire {
    version: u64,
    replicas: u64,
    vnodes_per_capacity_unit: u32,
    nodes: Vec<NodeSpec>,
    purge_floor: u64,
}

impl TryFrom<LayoutWire> for RingLayout {
    type Error = LayoutError;

    fn try_from(wire: LayoutWire) -> Result<Self, LayoutError> {
        let replicas = usize::try_from(wire.replicas)
            .map_err(|_| LayoutError::ReplicasOutOfRange(wire.replicas))?;
        RingLayout::from_parts(
            wire.version,
            replicas,
            wire.vnodes_per_capacity_unit,
            wire.nodes,
        )
        .map(|layout| layout.with_purge_floor_set(wire.purge_floor))
    }
}

impl From<RingLayout> for LayoutWire {
    fn from(layout: RingLayout) -> Self {
        LayoutWire {
            version: layout.version,
            replicas: layout.replicas as u64,
            vnodes_per_capacity_unit: layout.vnodes_per_capacity_unit,
            nodes: layout.nodes.into_values().collect(),
            purge_floor: layout.purge_floor,
        }
    }
}

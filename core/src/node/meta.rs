//! Node metadata under `m/`: identity, membership, and the tag-counter lease, recovered
//! on every open so a restarted node is the same member with the same ring.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ring::{NodeId, RingLayout, DEFAULT_VNODES_PER_CAPACITY_UNIT};
use crate::storage::{Engine, WriteBatch, WriteOptions};

use super::config::NodeConfig;
use super::error::NodeError;

pub const IDENTITY_KEY: &[u8] = b"m/identity";
pub const MEMBERS_KEY: &[u8] = b"m/members";
pub const TAG_LEASE_KEY: &[u8] = b"m/tag_lease";

/// Version of the initial layout built from `NodeConfig::members`.
pub const INITIAL_LAYOUT_VERSION: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum IdentityRecord {
    /// `incarnation` counts opens: bumped durably before the node does anything, so it
    /// is distinct for every run of this node.
    V1 { id: NodeId, incarnation: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum MembersRecord {
    V1 { layout: RingLayout },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum TagLeaseRecord {
    /// Every tag counter this node has issued is `<= ceiling` (see `tags.rs`).
    V1 { ceiling: u64 },
}

/// What `open` starts from.
#[derive(Debug, Clone)]
pub(crate) struct Recovered {
    pub id: NodeId,
    /// This run's incarnation (already persisted).
    pub incarnation: u64,
    pub layout: RingLayout,
    /// Every counter issued by earlier runs is `<=` this.
    pub tag_counter_floor: u64,
    /// Persisted lease ceiling for this run.
    pub tag_counter_ceiling: u64,
    /// Where persisted state overrode the configuration.
    pub notes: Vec<String>,
}

/// Reads `m/` (persisted values win over `config`), bumps the incarnation and takes a
/// new tag lease, durably, before returning.
pub(crate) fn recover(
    engine: &dyn Engine,
    config: &NodeConfig,
    tag_lease_counters: u64,
) -> Result<Recovered, NodeError> {
    let mut notes = Vec::new();
    let (id, previous_incarnation) = match read::<IdentityRecord>(engine, IDENTITY_KEY)? {
        Some(IdentityRecord::V1 { id, incarnation }) => {
            if id != config.id {
                notes.push(format!(
                    "persisted identity {id} overrides configured id {}",
                    config.id
                ));
            }
            (id, incarnation)
        }
        None => (config.id, 0),
    };
    let layout = match read::<MembersRecord>(engine, MEMBERS_KEY)? {
        Some(MembersRecord::V1 { layout }) => {
            let configured: Vec<_> = config.members.iter().collect();
            let persisted: Vec<_> = layout.nodes().values().collect();
            if configured.len() != persisted.len()
                || configured
                    .iter()
                    .any(|spec| layout.node(spec.id) != Some(spec))
                || layout.replicas() != config.replicas
            {
                notes.push(format!(
                    "persisted member list (layout version {}) overrides the configured one",
                    layout.version()
                ));
            }
            layout
        }
        None => RingLayout::from_parts(
            INITIAL_LAYOUT_VERSION,
            config.replicas,
            DEFAULT_VNODES_PER_CAPACITY_UNIT,
            config.members.iter().cloned(),
        )?,
    };
    if layout.node(id).is_none() {
        return Err(NodeError::InvalidConfig {
            reason: format!("node {id} is not a member of its ring layout"),
        });
    }
    let tag_counter_floor = match read::<TagLeaseRecord>(engine, TAG_LEASE_KEY)? {
        Some(TagLeaseRecord::V1 { ceiling }) => ceiling,
        None => 0,
    };
    let incarnation = previous_incarnation.saturating_add(1);
    let tag_counter_ceiling = tag_counter_floor.saturating_add(tag_lease_counters);
    let mut batch = WriteBatch::new();
    batch.put(
        IDENTITY_KEY,
        encode(&IdentityRecord::V1 { id, incarnation })?,
    );
    batch.put(
        MEMBERS_KEY,
        encode(&MembersRecord::V1 {
            layout: layout.clone(),
        })?,
    );
    batch.put(
        TAG_LEASE_KEY,
        encode(&TagLeaseRecord::V1 {
            ceiling: tag_counter_ceiling,
        })?,
    );
    engine.write(&batch, WriteOptions::DURABLE)?;
    Ok(Recovered {
        id,
        incarnation,
        layout,
        tag_counter_floor,
        tag_counter_ceiling,
        notes,
    })
}

/// Durably records a new tag lease ceiling. The error is a description for status.
pub(crate) fn write_tag_lease(engine: &dyn Engine, ceiling: u64) -> Result<(), String> {
    let bytes = postcard::to_allocvec(&TagLeaseRecord::V1 { ceiling })
        .map_err(|error| format!("encoding the tag lease: {error}"))?;
    let mut batch = WriteBatch::new();
    batch.put(TAG_LEASE_KEY, bytes);
    engine
        .write(&batch, WriteOptions::DURABLE)
        .map_err(|error| format!("persisting the tag lease: {error}"))?;
    Ok(())
}

fn read<T: DeserializeOwned>(engine: &dyn Engine, key: &[u8]) -> Result<Option<T>, NodeError> {
    let Some(bytes) = engine.get(key)? else {
        return Ok(None);
    };
    postcard::from_bytes(&bytes)
        .map(Some)
        .map_err(|error| NodeError::CorruptMetadata {
            key: String::from_utf8_lossy(key).into_owned(),
            reason: error.to_string(),
        })
}

fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, NodeError> {
    postcard::to_allocvec(record).map_err(|error| NodeError::CorruptMetadata {
        key: "(encoding)".into(),
        reason: error.to_string(),
    })
}

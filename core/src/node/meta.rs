//! Node metadata under `m/`: identity, membership, and the tag-counter lease, recovered
//! on every open so a restarted node is the same member with the same ring.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::protocol::Ballot;
use crate::ring::{LayoutHistory, NodeId, RingLayout, DEFAULT_VNODES_PER_CAPACITY_UNIT};
use crate::storage::{Engine, WriteBatch, WriteOptions};

use super::config::NodeConfig;
use super::error::NodeError;

pub const IDENTITY_KEY: &[u8] = b"m/identity";
pub const MEMBERS_KEY: &[u8] = b"m/members";
pub const TAG_LEASE_KEY: &[u8] = b"m/tag_lease";
pub const PAXOS_KEY: &[u8] = b"m/paxos";

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
    /// A static member list (written by builds without membership changes).
    V1 {
        layout: RingLayout,
    },
    V2 {
        history: LayoutHistory,
    },
}

/// A Paxos acceptor's promise and vote for one layout version (`node/membership/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum PaxosRecord {
    V1 {
        version: u64,
        promised: Ballot,
        accepted: Option<(Ballot, RingLayout)>,
    },
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
    pub history: LayoutHistory,
    pub paxos: Option<PaxosRecord>,
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
    let history = match read::<MembersRecord>(engine, MEMBERS_KEY)? {
        Some(MembersRecord::V1 { layout }) => LayoutHistory::new(layout),
        Some(MembersRecord::V2 { history }) => history,
        None if config.members.is_empty() => {
            notes.push("no member list: waiting to be added to a cluster".into());
            LayoutHistory::new(RingLayout::new(config.replicas))
        }
        None => LayoutHistory::new(RingLayout::from_parts(
            INITIAL_LAYOUT_VERSION,
            config.replicas,
            DEFAULT_VNODES_PER_CAPACITY_UNIT,
            config.members.iter().cloned(),
        )?),
    };
    let layout = history.committed();
    if layout.version() > 0 && !config.members.is_empty() {
        let configured: Vec<_> = config.members.iter().collect();
        if configured.len() != layout.nodes().len()
            || configured
                .iter()
                .any(|spec| layout.node(spec.id) != Some(spec))
            || layout.replicas() != config.replicas
        {
            notes.push(format!(
                "persisted membership (layout version {}) overrides the configured member list",
                history.epoch()
            ));
        }
    }
    if layout.version() > 0 && !history.is_member(id) {
        notes.push(format!(
            "node {id} is not a member of its layout: it has left the cluster"
        ));
    }
    let paxos = read::<PaxosRecord>(engine, PAXOS_KEY)?;
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
        encode(&MembersRecord::V2 {
            history: history.clone(),
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
        history,
        paxos,
        tag_counter_floor,
        tag_counter_ceiling,
        notes,
    })
}

/// Durably records the layout history (before the node acts on it: a replica's fence
/// must survive a restart). The error is a description for status.
pub(crate) fn write_history(engine: &dyn Engine, history: &LayoutHistory) -> Result<(), String> {
    write_record(
        engine,
        MEMBERS_KEY,
        &MembersRecord::V2 {
            history: history.clone(),
        },
        "the layout history",
    )
}

/// Durably records an acceptor's promise and vote (before it answers).
pub(crate) fn write_paxos(engine: &dyn Engine, record: &PaxosRecord) -> Result<(), String> {
    write_record(engine, PAXOS_KEY, record, "the Paxos acceptor state")
}

fn write_record<T: Serialize>(
    engine: &dyn Engine,
    key: &[u8],
    record: &T,
    what: &str,
) -> Result<(), String> {
    let bytes =
        postcard::to_allocvec(record).map_err(|error| format!("encoding {what}: {error}"))?;
    let mut batch = WriteBatch::new();
    batch.put(key, bytes);
    engine
        .write(&batch, WriteOptions::DURABLE)
        .map_err(|error| format!("persisting {what}: {error}"))?;
    Ok(())
}

/// Durably records a new tag lease ceiling. The error is a description for status.
pub(crate) fn write_tag_lease(engine: &dyn Engine, ceiling: u64) -> Result<(), String> {
    write_record(
        engine,
        TAG_LEASE_KEY,
        &TagLeaseRecord::V1 { ceiling },
        "the tag lease",
    )
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

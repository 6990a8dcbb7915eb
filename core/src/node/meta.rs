//! Node metadata under `m/`: identity, membership, and the tag-counter lease, recovered
//! on every open so a restarted node is the same member with the same ring.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::protocol::Ballot;
use crate::ring::legacy::{
    HistoryV1, HistoryV2, HistoryV3, HistoryV4, HistoryV5, LayoutV1, LayoutV2, LayoutV3,
};
use crate::ring::{
    IdentityDigest, LayoutHistory, NodeId, RingLayout, DEFAULT_VNODES_PER_CAPACITY_UNIT,
    IDENTITY_SECRET_BYTES,
};
use crate::storage::{Engine, WriteBatch, WriteOptions};

use super::config::NodeConfig;
use super::error::NodeError;

pub const IDENTITY_KEY: &[u8] = b"m/identity";
pub const MEMBERS_KEY: &[u8] = b"m/members";
pub const TAG_LEASE_KEY: &[u8] = b"m/tag_lease";
pub const PAXOS_KEY: &[u8] = b"m/paxos";
pub const SYNC_SERVED_KEY: &[u8] = b"m/sync_served";

/// Version of the initial layout built from `NodeConfig::members`.
pub const INITIAL_LAYOUT_VERSION: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum IdentityRecord {
    /// `incarnation` counts opens: bumped durably before the node does anything, so it
    /// is distinct for every run of this node. (Builds before member identities.)
    V1 { id: NodeId, incarnation: u64 },
    /// `secret`: generated when the store was first opened (or first opened by a build
    /// with identities) and never changed; its digest is the member's identity
    /// (`NodeSpec::identity`), so a store that lost it is a different member.
    V2 {
        id: NodeId,
        incarnation: u64,
        secret: [u8; IDENTITY_SECRET_BYTES],
    },
}

/// `m/members`. Variants only append; V1–V6 hold older formats (`ring::legacy`) and are
/// read, never written (rewritten as V7 on open).
#[derive(Serialize, Deserialize)]
enum MembersRecord {
    /// A static member list (written by builds without membership changes).
    V1 {
        layout: LayoutV1,
    },
    V2 {
        history: HistoryV1,
    },
    /// Format 2 layouts (before the purge floor).
    V3 {
        history: HistoryV2,
    },
    /// Histories before fences.
    V4 {
        history: HistoryV3,
    },
    /// Histories before claims.
    V5 {
        history: HistoryV4,
    },
    /// Histories of layouts before processes (every member its own process).
    V6 {
        history: HistoryV5,
    },
    V7 {
        history: LayoutHistory,
    },
}

/// A Paxos acceptor's promise and vote for one layout version (`node/membership/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PaxosRecord {
    pub version: u64,
    pub promised: Ballot,
    pub accepted: Option<(Ballot, RingLayout)>,
}

/// `m/paxos` as stored; V1–V3 (layouts of older formats: before member identities,
/// the purge floor, processes) are read, never written.
#[derive(Serialize, Deserialize)]
enum PaxosRecordOnDisk {
    V1 {
        version: u64,
        promised: Ballot,
        accepted: Option<(Ballot, LayoutV1)>,
    },
    /// A format 2 layout (before the purge floor).
    V2 {
        version: u64,
        promised: Ballot,
        accepted: Option<(Ballot, LayoutV2)>,
    },
    /// A format 3 layout (before processes).
    V3 {
        version: u64,
        promised: Ballot,
        accepted: Option<(Ballot, LayoutV3)>,
    },
    V4 {
        version: u64,
        promised: Ballot,
        accepted: Option<(Ballot, RingLayout)>,
    },
}

/// `m/sync_served`: the members this node sent the last page of a whole sync stream
/// for the change of layout version `epoch`. Written before that page leaves, so a
/// fence of that change (`LayoutHistory::fences`) never leaves out a member that may
/// have synced from this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum SyncServedRecord {
    V1 { epoch: u64, targets: Vec<NodeId> },
}

/// See [`SyncServedRecord`]: `(epoch, targets)`, if recorded.
pub(crate) fn read_sync_served(
    engine: &dyn Engine,
) -> Result<Option<(u64, BTreeSet<NodeId>)>, NodeError> {
    Ok(
        read::<SyncServedRecord>(engine, SYNC_SERVED_KEY)?.map(|record| match record {
            SyncServedRecord::V1 { epoch, targets } => (epoch, targets.into_iter().collect()),
        }),
    )
}

/// Durably records [`SyncServedRecord`].
pub(crate) fn write_sync_served(
    engine: &dyn Engine,
    epoch: u64,
    targets: &BTreeSet<NodeId>,
) -> Result<(), String> {
    write_record(
        engine,
        SYNC_SERVED_KEY,
        &SyncServedRecord::V1 {
            epoch,
            targets: targets.iter().copied().collect(),
        },
        "the sync streams served",
    )
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
    /// The store's identity secret (its digest is this member's identity).
    pub secret: [u8; IDENTITY_SECRET_BYTES],
    /// This run's incarnation (already persisted).
    pub incarnation: u64,
    pub history: LayoutHistory,
    pub paxos: Option<PaxosRecord>,
    /// `m/sync_served` (`read_sync_served`).
    pub sync_served: Option<(u64, BTreeSet<NodeId>)>,
    /// Every counter issued by earlier runs is `<=` this.
    pub tag_counter_floor: u64,
    /// Persisted lease ceiling for this run.
    pub tag_counter_ceiling: u64,
    /// Where persisted state overrode the configuration.
    pub notes: Vec<String>,
}

/// The id recorded in `m/identity` by a node that opened on `engine` before, if any
/// (`Node::stored_id`).
pub(crate) fn stored_id(engine: &dyn Engine) -> Result<Option<NodeId>, NodeError> {
    Ok(
        read::<IdentityRecord>(engine, IDENTITY_KEY)?.map(|record| match record {
            IdentityRecord::V1 { id, .. } | IdentityRecord::V2 { id, .. } => id,
        }),
    )
}

/// Reads `m/` (persisted values win over `config`), bumps the incarnation and takes a
/// new tag lease, durably, before returning.
pub(crate) fn recover(
    engine: &dyn Engine,
    config: &NodeConfig,
    tag_lease_counters: u64,
    now_ms: u64,
) -> Result<Recovered, NodeError> {
    let mut notes = Vec::new();
    let (id, previous_incarnation, secret) = match read::<IdentityRecord>(engine, IDENTITY_KEY)? {
        Some(IdentityRecord::V1 { id, incarnation }) => {
            notes.push("this store had no identity secret: generated one".into());
            (id, incarnation, fresh_secret(config, now_ms))
        }
        Some(IdentityRecord::V2 {
            id,
            incarnation,
            secret,
        }) => (id, incarnation, secret),
        None => (config.id, 0, fresh_secret(config, now_ms)),
    };
    if id != config.id && previous_incarnation > 0 {
        notes.push(format!(
            "persisted identity {id} overrides configured id {}",
            config.id
        ));
    }
    let legacy = |key: &[u8], reason: String| NodeError::CorruptMetadata {
        key: String::from_utf8_lossy(key).into_owned(),
        reason,
    };
    let history = match read::<MembersRecord>(engine, MEMBERS_KEY)? {
        Some(MembersRecord::V1 { layout }) => {
            LayoutHistory::new(layout.upgrade().map_err(|e| legacy(MEMBERS_KEY, e))?)
        }
        Some(MembersRecord::V2 { history }) => {
            history.upgrade().map_err(|e| legacy(MEMBERS_KEY, e))?
        }
        Some(MembersRecord::V3 { history }) => {
            history.upgrade().map_err(|e| legacy(MEMBERS_KEY, e))?
        }
        Some(MembersRecord::V4 { history }) => {
            history.upgrade().map_err(|e| legacy(MEMBERS_KEY, e))?
        }
        Some(MembersRecord::V5 { history }) => {
            history.upgrade().map_err(|e| legacy(MEMBERS_KEY, e))?
        }
        Some(MembersRecord::V6 { history }) => {
            history.upgrade().map_err(|e| legacy(MEMBERS_KEY, e))?
        }
        Some(MembersRecord::V7 { history }) => history,
        None if config.members.is_empty() => {
            notes.push("no member list: waiting to be added to a cluster".into());
            LayoutHistory::new(RingLayout::new(config.replicas))
        }
        None => {
            // A node founding a cluster alone binds itself to its store's identity; in a
            // shared member list every node must build the same layout, so members stay
            // unbound (no node knows the others' identities).
            let alone = config.members.len() == 1 && config.members[0].id == id;
            let members = config
                .members
                .iter()
                .cloned()
                .map(|spec| match spec.identity {
                    None if alone => spec.with_identity(IdentityDigest::of(&secret)),
                    _ => spec,
                });
            LayoutHistory::new(RingLayout::from_parts(
                INITIAL_LAYOUT_VERSION,
                config.replicas,
                DEFAULT_VNODES_PER_CAPACITY_UNIT,
                members,
            )?)
        }
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
    // A vote in an older layout format, upgraded.
    fn upgraded<L>(
        accepted: Option<(Ballot, L)>,
        upgrade: impl Fn(L) -> Result<RingLayout, String>,
    ) -> Result<Option<(Ballot, RingLayout)>, String> {
        accepted
            .map(|(ballot, layout)| upgrade(layout).map(|layout| (ballot, layout)))
            .transpose()
    }
    let paxos = match read::<PaxosRecordOnDisk>(engine, PAXOS_KEY)? {
        None => None,
        Some(PaxosRecordOnDisk::V1 {
            version,
            promised,
            accepted,
        }) => Some(PaxosRecord {
            version,
            promised,
            accepted: upgraded(accepted, LayoutV1::upgrade).map_err(|e| legacy(PAXOS_KEY, e))?,
        }),
        Some(PaxosRecordOnDisk::V2 {
            version,
            promised,
            accepted,
        }) => Some(PaxosRecord {
            version,
            promised,
            accepted: upgraded(accepted, LayoutV2::upgrade).map_err(|e| legacy(PAXOS_KEY, e))?,
        }),
        Some(PaxosRecordOnDisk::V3 {
            version,
            promised,
            accepted,
        }) => Some(PaxosRecord {
            version,
            promised,
            accepted: upgraded(accepted, LayoutV3::upgrade).map_err(|e| legacy(PAXOS_KEY, e))?,
        }),
        Some(PaxosRecordOnDisk::V4 {
            version,
            promised,
            accepted,
        }) => Some(PaxosRecord {
            version,
            promised,
            accepted,
        }),
    };
    let tag_counter_floor = match read::<TagLeaseRecord>(engine, TAG_LEASE_KEY)? {
        Some(TagLeaseRecord::V1 { ceiling }) => ceiling,
        None => 0,
    };
    let incarnation = previous_incarnation.saturating_add(1);
    let tag_counter_ceiling = tag_counter_floor.saturating_add(tag_lease_counters);
    let mut batch = WriteBatch::new();
    batch.put(
        IDENTITY_KEY,
        encode(&IdentityRecord::V2 {
            id,
            incarnation,
            secret,
        })?,
    );
    batch.put(
        MEMBERS_KEY,
        encode(&MembersRecord::V7 {
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
        secret,
        incarnation,
        history,
        paxos,
        sync_served: read_sync_served(engine)?,
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
        &MembersRecord::V7 {
            history: history.clone(),
        },
        "the layout history",
    )
}

/// Durably records an acceptor's promise and vote (before it answers).
pub(crate) fn write_paxos(engine: &dyn Engine, record: &PaxosRecord) -> Result<(), String> {
    let record = PaxosRecordOnDisk::V4 {
        version: record.version,
        promised: record.promised,
        accepted: record.accepted.clone(),
    };
    write_record(engine, PAXOS_KEY, &record, "the Paxos acceptor state")
}

/// A new store's identity secret: the host's fresh randomness (`NodeConfig::
/// fresh_identity`), mixed with the id and clock so hosts that pass none (tests) still
/// get one per store.
fn fresh_secret(config: &NodeConfig, now_ms: u64) -> [u8; IDENTITY_SECRET_BYTES] {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    hash.update(b"ringkv identity secret v1");
    hash.update(config.fresh_identity);
    hash.update(config.id.0.to_le_bytes());
    hash.update(now_ms.to_le_bytes());
    hash.finalize().into()
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde::Serialize;

    use super::*;
    use crate::ring::NodeSpec;
    use crate::storage::blockstore::MemoryStore;
    use crate::storage::lsm::{LsmEngine, LsmOptions};

    /// A `NodeSpec` as builds before processes wrote it.
    #[derive(Serialize)]
    struct SpecFormat2 {
        id: NodeId,
        zone: String,
        capacity: u32,
        address: String,
        identity: Option<IdentityDigest>,
    }

    impl SpecFormat2 {
        fn of(spec: &NodeSpec) -> Self {
            assert_eq!(spec.process, None, "no processes before format 3");
            SpecFormat2 {
                id: spec.id,
                zone: spec.zone.clone(),
                capacity: spec.capacity,
                address: spec.address.clone(),
                identity: spec.identity,
            }
        }
    }

    /// A `RingLayout` as builds before the purge floor wrote it (format 2).
    #[derive(Serialize)]
    struct LayoutFormat2 {
        version: u64,
        replicas: u64,
        vnodes_per_capacity_unit: u32,
        nodes: Vec<SpecFormat2>,
    }

    /// A `RingLayout` as builds before processes wrote it (format 3).
    #[derive(Serialize)]
    struct LayoutFormat3 {
        version: u64,
        replicas: u64,
        vnodes_per_capacity_unit: u32,
        nodes: Vec<SpecFormat2>,
        purge_floor: u64,
    }

    impl LayoutFormat3 {
        fn of(layout: &RingLayout) -> Self {
            LayoutFormat3 {
                version: layout.version(),
                replicas: layout.replicas() as u64,
                vnodes_per_capacity_unit: layout.vnodes_per_capacity_unit(),
                nodes: layout.nodes().values().map(SpecFormat2::of).collect(),
                purge_floor: layout.purge_floor(),
            }
        }
    }

    #[derive(Serialize)]
    struct HistoryFormat2 {
        committed: LayoutFormat2,
        pending: Option<LayoutFormat2>,
        synced: Vec<NodeId>,
        committed_by: Vec<NodeId>,
    }

    /// `MembersRecord` and `PaxosRecordOnDisk` as those builds wrote them: V3 and V2
    /// were their newest variants.
    #[derive(Serialize)]
    enum OldMembersRecord {
        _V1,
        _V2,
        V3 { history: HistoryFormat2 },
    }

    #[derive(Serialize)]
    enum OldPaxosRecord {
        _V1,
        V2 {
            version: u64,
            promised: Ballot,
            accepted: Option<(Ballot, LayoutFormat2)>,
        },
    }

    fn layout(version: u64) -> LayoutFormat2 {
        LayoutFormat2 {
            version,
            replicas: 3,
            vnodes_per_capacity_unit: 16,
            nodes: (1..=3)
                .map(|i| SpecFormat2::of(&NodeSpec::new(i, "z", 1)))
                .collect(),
        }
    }

    #[test]
    fn records_from_before_the_purge_floor_are_read_with_floor_zero() {
        let engine =
            LsmEngine::open(Arc::new(MemoryStore::new()), LsmOptions::tiny()).expect("open");
        let ballot = Ballot {
            round: 4,
            node: NodeId(2),
        };
        let mut batch = WriteBatch::new();
        batch.put(
            MEMBERS_KEY,
            encode(&OldMembersRecord::V3 {
                history: HistoryFormat2 {
                    committed: layout(5),
                    pending: None,
                    synced: Vec::new(),
                    committed_by: vec![NodeId(1), NodeId(3)],
                },
            })
            .expect("encode"),
        );
        batch.put(
            PAXOS_KEY,
            encode(&OldPaxosRecord::V2 {
                version: 6,
                promised: ballot,
                accepted: Some((ballot, layout(6))),
            })
            .expect("encode"),
        );
        engine.write(&batch, WriteOptions::DURABLE).expect("write");
        let spec = NodeSpec::new(1, "z", 1);
        let config = NodeConfig::for_member(&spec, Vec::new());
        let recovered = recover(&engine, &config, 1 << 10, 0).expect("recover");
        let committed = recovered.history.committed();
        assert_eq!(committed.version(), 5);
        assert_eq!(committed.purge_floor(), 0);
        assert_eq!(committed.nodes().len(), 3);
        assert_eq!(
            recovered
                .history
                .committed_by()
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            vec![NodeId(1), NodeId(3)]
        );
        let paxos = recovered.paxos.expect("paxos record");
        assert_eq!((paxos.version, paxos.promised), (6, ballot));
        let (_, voted) = paxos.accepted.expect("vote");
        assert_eq!((voted.version(), voted.purge_floor()), (6, 0));
        // Rewritten in the current form, which reads back the same.
        let again = recover(&engine, &config, 1 << 10, 0).expect("recover again");
        assert_eq!(again.history, recovered.history);
    }

    /// `m/members` as the builds before fences wrote it (V4 was their newest).
    #[derive(Serialize)]
    enum MembersBeforeFences {
        _V1,
        _V2,
        _V3,
        V4 { history: HistoryFormat3 },
    }

    #[derive(Serialize)]
    struct HistoryFormat3 {
        committed: LayoutFormat3,
        pending: Option<LayoutFormat3>,
        synced: Vec<NodeId>,
        committed_by: Vec<NodeId>,
    }

    /// An empty store and a change from 3 members (v5) to 4 (v6), for the records of
    /// older builds.
    fn legacy_change() -> (LsmEngine, RingLayout, RingLayout) {
        let engine =
            LsmEngine::open(Arc::new(MemoryStore::new()), LsmOptions::tiny()).expect("open");
        let specs = |n: u64| {
            (1..=n)
                .map(|i| NodeSpec::new(i, "z", 1))
                .collect::<Vec<_>>()
        };
        let committed = RingLayout::from_parts(5, 3, 16, specs(3)).expect("layout");
        let pending = RingLayout::from_parts(6, 3, 16, specs(4)).expect("layout");
        (engine, committed, pending)
    }

    /// `m/members` as the builds before claims wrote it (V5 was their newest).
    #[derive(Serialize)]
    enum MembersBeforeClaims {
        _V1,
        _V2,
        _V3,
        _V4,
        V5 { history: HistoryFormat4 },
    }

    #[derive(Serialize)]
    struct HistoryFormat4 {
        committed: LayoutFormat3,
        pending: Option<LayoutFormat3>,
        synced: Vec<NodeId>,
        committed_by: Vec<NodeId>,
        fences: Vec<(NodeId, FenceFormat1)>,
    }

    #[derive(Serialize)]
    struct FenceFormat1 {
        served: BTreeSet<NodeId>,
        gone: BTreeSet<NodeId>,
    }

    /// Their synced members come back held too; their fences exclude no claim but
    /// their own member's, unless it had synced.
    #[test]
    fn histories_from_before_claims_are_read_with_conservative_fences() {
        let (engine, committed, pending) = legacy_change();
        let fence = |served: &[u64]| FenceFormat1 {
            served: served.iter().map(|id| NodeId(*id)).collect(),
            gone: BTreeSet::new(),
        };
        let mut batch = WriteBatch::new();
        batch.put(
            MEMBERS_KEY,
            encode(&MembersBeforeClaims::V5 {
                history: HistoryFormat4 {
                    committed: LayoutFormat3::of(&committed),
                    pending: Some(LayoutFormat3::of(&pending)),
                    synced: vec![NodeId(2)],
                    committed_by: Vec::new(),
                    fences: vec![(NodeId(2), fence(&[4])), (NodeId(4), fence(&[]))],
                },
            })
            .expect("encode"),
        );
        engine.write(&batch, WriteOptions::DURABLE).expect("write");
        let config = NodeConfig::for_member(&NodeSpec::new(1, "z", 1), Vec::new());
        let recovered = recover(&engine, &config, 1 << 10, 0).expect("recover");
        let history = &recovered.history;
        assert_eq!(history.pending(), Some(&pending));
        assert!(history.synced().contains(&NodeId(2)));
        assert!(history.claims().contains(&NodeId(2)));
        assert!(history.fences()[&NodeId(2)].excludes.is_empty());
        assert_eq!(
            history.fences()[&NodeId(2)].served,
            BTreeSet::from([NodeId(4)])
        );
        assert_eq!(
            history.fences()[&NodeId(4)].excludes,
            BTreeSet::from([NodeId(4)])
        );
        let again = recover(&engine, &config, 1 << 10, 0).expect("recover again");
        assert_eq!(again.history, recovered.history);
    }

    #[test]
    fn histories_from_before_fences_are_read_with_none() {
        let (engine, committed, pending) = legacy_change();
        let mut batch = WriteBatch::new();
        batch.put(
            MEMBERS_KEY,
            encode(&MembersBeforeFences::V4 {
                history: HistoryFormat3 {
                    committed: LayoutFormat3::of(&committed),
                    pending: Some(LayoutFormat3::of(&pending)),
                    synced: vec![NodeId(4)],
                    committed_by: Vec::new(),
                },
            })
            .expect("encode"),
        );
        engine.write(&batch, WriteOptions::DURABLE).expect("write");
        let config = NodeConfig::for_member(&NodeSpec::new(1, "z", 1), Vec::new());
        let recovered = recover(&engine, &config, 1 << 10, 0).expect("recover");
        assert_eq!(recovered.history.committed(), &committed);
        assert_eq!(recovered.history.pending(), Some(&pending));
        assert!(recovered.history.synced().contains(&NodeId(4)));
        assert!(recovered.history.fences().is_empty());
        let again = recover(&engine, &config, 1 << 10, 0).expect("recover again");
        assert_eq!(again.history, recovered.history);
    }

    /// `m/members` and `m/paxos` as the builds before processes wrote them (V6 and V3
    /// were their newest).
    #[derive(Serialize)]
    enum MembersBeforeProcesses {
        _V1,
        _V2,
        _V3,
        _V4,
        _V5,
        V6 { history: Box<HistoryFormat5> },
    }

    #[derive(Serialize)]
    enum PaxosBeforeProcesses {
        _V1,
        _V2,
        V3 {
            version: u64,
            promised: Ballot,
            accepted: Option<(Ballot, LayoutFormat3)>,
        },
    }

    #[derive(Serialize)]
    struct HistoryFormat5 {
        committed: LayoutFormat3,
        pending: Option<LayoutFormat3>,
        synced: Vec<NodeId>,
        committed_by: Vec<NodeId>,
        fences: Vec<(NodeId, crate::ring::history::Fence)>,
        claims: Vec<NodeId>,
    }

    /// Every member comes back its own process, with everything else as written: the
    /// ring places every key where the older build did.
    #[test]
    fn records_from_before_processes_are_read_with_each_member_its_own_process() {
        let (engine, committed, pending) = legacy_change();
        let identity = IdentityDigest::of(b"secret of n2");
        let bound = |layout: &RingLayout| {
            let spec = layout.node(NodeId(2)).expect("n2").clone();
            layout
                .with_node(spec.with_identity(identity))
                .expect("layout")
                .renumbered(layout.version())
                .with_purge_floor_set(7)
        };
        let (committed, pending) = (bound(&committed), bound(&pending));
        let ballot = Ballot {
            round: 2,
            node: NodeId(3),
        };
        let mut batch = WriteBatch::new();
        batch.put(
            MEMBERS_KEY,
            encode(&MembersBeforeProcesses::V6 {
                history: Box::new(HistoryFormat5 {
                    committed: LayoutFormat3::of(&committed),
                    pending: Some(LayoutFormat3::of(&pending)),
                    synced: vec![NodeId(4)],
                    committed_by: Vec::new(),
                    fences: Vec::new(),
                    claims: vec![NodeId(4), NodeId(1)],
                }),
            })
            .expect("encode"),
        );
        batch.put(
            PAXOS_KEY,
            encode(&PaxosBeforeProcesses::V3 {
                version: 7,
                promised: ballot,
                accepted: Some((ballot, LayoutFormat3::of(&pending))),
            })
            .expect("encode"),
        );
        engine.write(&batch, WriteOptions::DURABLE).expect("write");
        let config = NodeConfig::for_member(&NodeSpec::new(1, "z", 1), Vec::new());
        let recovered = recover(&engine, &config, 1 << 10, 0).expect("recover");
        let history = &recovered.history;
        assert_eq!(history.committed(), &committed);
        assert_eq!(history.pending(), Some(&pending));
        assert!(history.synced().contains(&NodeId(4)));
        assert_eq!(
            history.claims().iter().copied().collect::<Vec<_>>(),
            vec![NodeId(1), NodeId(4)]
        );
        for layout in [history.committed(), &pending] {
            assert_eq!(layout.purge_floor(), 7);
            assert_eq!(
                layout.node(NodeId(2)).and_then(|s| s.identity),
                Some(identity)
            );
            assert!(layout.nodes().values().all(|spec| spec.process.is_none()));
            assert_eq!(layout.domain_count(), layout.nodes().len());
        }
        let paxos = recovered.paxos.expect("paxos record");
        assert_eq!((paxos.version, paxos.promised), (7, ballot));
        assert_eq!(paxos.accepted.map(|(_, layout)| layout), Some(pending));
        // Rewritten in the current form (V7), which reads back the same.
        let again = recover(&engine, &config, 1 << 10, 0).expect("recover again");
        assert_eq!(again.history, recovered.history);
        assert!(matches!(
            read::<MembersRecord>(&engine, MEMBERS_KEY),
            Ok(Some(MembersRecord::V7 { .. }))
        ));
    }
}

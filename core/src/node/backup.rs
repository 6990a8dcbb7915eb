//! Cluster backup, the core's part: paging out everything one replica stores, merging
//! what several replicas said about one key, and deciding whether the replicas that
//! were read cover the whole ring. Hosts move the pages (native: the client protocol's
//! `Backup` frame, `ringkv backup`) and write the files; the rules live here so every
//! host applies the same ones.
//!
//! Why the union of replicas read after the backup started holds every write
//! acknowledged before it: an acknowledged register write is on a majority of its
//! key's replicas (ABD phase 2, and range streaming carries it to a majority of every
//! later layout's replicas before that layout commits), and replicas never move a
//! register backwards or delete a record (tombstones are kept). So reading every record
//! of a majority of each range's replicas, at any time after the start, finds a tag at
//! least as new as every acknowledged write; the merge keeps the largest tag per key
//! (a tombstone included, so a deleted key stays deleted). A larger tag than any
//! acknowledged one can only be a write in flight or `Indeterminate` at the time, which
//! ABD already allows to take effect. Eventual keys merge their sibling states
//! (dotted version vectors: the merge is the union of what every copy saw).

use std::collections::BTreeSet;
use std::ops::Bound;

use serde::{Deserialize, Serialize};

use super::eventual::stored::{EventualRecord, EVENTUAL_PREFIX};
use super::stored::{Stored, DATA_PREFIX};
use crate::protocol::SyncEntry;
use crate::ring::{NodeId, RingLayout, TokenRange};
use crate::storage::{prefix_successor, Engine, StorageError};

/// Most records one backup page holds.
pub const BACKUP_PAGE_ENTRIES_MAX: usize = 256;
/// A page stops before its keys and values pass this (the first record always goes:
/// one record is at most a key plus a stored state, which the node bounds to fit a
/// frame), so a page plus its framing fits the 2 MiB frame.
pub const BACKUP_PAGE_BYTES_MAX: usize = 1 << 20;
/// Bytes counted per record on top of its key and value (tag, lengths, variant).
const ENTRY_OVERHEAD_BYTES: usize = 32;

/// Where the next backup page starts. Registers (`d/`) first, in key order, then
/// eventual keys (`e/`), so one stream visits every record of the replica once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackupCursor {
    Registers { after: Vec<u8> },
    Eventual { after: Option<Vec<u8>> },
}

/// One page of a replica's records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupPage {
    pub entries: Vec<SyncEntry>,
    /// `None`: the replica's stream is complete.
    pub next: Option<BackupCursor>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("the record of key {key:02x?} is unreadable: {error}")]
    Corrupt {
        key: Vec<u8>,
        error: postcard::Error,
    },
}

/// The order records are merged and written in: registers before eventual keys, each
/// by key bytes (the order [`backup_page`] streams them in).
pub fn entry_order(entry: &SyncEntry) -> (u8, &[u8]) {
    match entry {
        SyncEntry::Register { key, .. } => (0, key),
        SyncEntry::Eventual { key, .. } => (1, key),
    }
}

/// The next page of every register and eventual record this replica stores, from
/// `cursor` (`None`: the start), at most `limit` records (capped by
/// [`BACKUP_PAGE_ENTRIES_MAX`]). Reads only; hosts run it off the node's turn.
///
/// Not a point-in-time snapshot of the replica, and need not be: records are never
/// removed, so every key stored before the scan began is visited, each with a record
/// at least as new as it was then.
pub fn backup_page(
    engine: &dyn Engine,
    cursor: Option<&BackupCursor>,
    limit: usize,
) -> Result<BackupPage, BackupError> {
    let limit = limit.clamp(1, BACKUP_PAGE_ENTRIES_MAX);
    let mut entries = Vec::new();
    let mut bytes = 0usize;
    let registers = match cursor {
        None => Some(None),
        Some(BackupCursor::Registers { after }) => Some(Some(after.as_slice())),
        Some(BackupCursor::Eventual { .. }) => None,
    };
    if let Some(after) = registers {
        let (full, last) = scan(
            engine,
            DATA_PREFIX,
            after,
            limit,
            &mut entries,
            &mut bytes,
            // A promise-only record (`Stored::Promised` of a key never written) is
            // not a key: nothing to back up.
            |key, record| match Stored::decode(record) {
                Ok(stored) => Ok(stored.register().map(|(tag, value)| SyncEntry::Register {
                    key: key.to_vec(),
                    tag,
                    value: value.map(<[u8]>::to_vec),
                })),
                Err(error) => Err(BackupError::Corrupt {
                    key: key.to_vec(),
                    error,
                }),
            },
        )?;
        if full {
            return Ok(BackupPage {
                entries,
                next: last.map(|after| BackupCursor::Registers { after }),
            });
        }
        // Registers done: the eventual records follow in the same page if room is left.
        if entries.len() >= limit || bytes >= BACKUP_PAGE_BYTES_MAX {
            return Ok(BackupPage {
                entries,
                next: Some(BackupCursor::Eventual { after: None }),
            });
        }
    }
    let after = match cursor {
        Some(BackupCursor::Eventual { after }) => after.as_deref(),
        _ => None,
    };
    let room = limit - entries.len();
    let (full, last) = scan(
        engine,
        EVENTUAL_PREFIX,
        after,
        room,
        &mut entries,
        &mut bytes,
        |key, record| match EventualRecord::decode(record) {
            Ok(record) => Ok(Some(SyncEntry::Eventual {
                key: key.to_vec(),
                state: record.into_state(),
            })),
            Err(error) => Err(BackupError::Corrupt {
                key: key.to_vec(),
                error,
            }),
        },
    )?;
    let next = match (full, last) {
        (true, Some(after)) => Some(BackupCursor::Eventual { after: Some(after) }),
        // A full page with nothing taken cannot happen (the first record always goes).
        _ => None,
    };
    Ok(BackupPage { entries, next })
}

/// Scans `prefix` after user key `after`, appending up to `limit` records to `out`
/// (stopping before `BACKUP_PAGE_BYTES_MAX` unless `out` is empty). Returns whether it
/// stopped early (more may follow) and the last user key taken.
fn scan(
    engine: &dyn Engine,
    prefix: &[u8],
    after: Option<&[u8]>,
    limit: usize,
    out: &mut Vec<SyncEntry>,
    bytes: &mut usize,
    decode: impl Fn(&[u8], &[u8]) -> Result<Option<SyncEntry>, BackupError>,
) -> Result<(bool, Option<Vec<u8>>), BackupError> {
    let start_key = after.map(|key| [prefix, key].concat());
    let start = match &start_key {
        Some(key) => Bound::Excluded(key.as_slice()),
        None => Bound::Included(prefix),
    };
    let end_key = prefix_successor(prefix);
    let end = end_key.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    let found = engine.scan(start, end, limit)?;
    let mut stopped = found.len() >= limit;
    let mut last = None;
    for (engine_key, record) in found {
        let Some(key) = engine_key.strip_prefix(prefix) else {
            continue;
        };
        let size = key.len() + record.len() + ENTRY_OVERHEAD_BYTES;
        if !out.is_empty() && bytes.saturating_add(size) > BACKUP_PAGE_BYTES_MAX {
            stopped = true;
            break;
        }
        *bytes = bytes.saturating_add(size);
        out.extend(decode(key, &record)?);
        last = Some(key.to_vec());
    }
    Ok((stopped, last))
}

/// Merges `other` (a record of the same key and kind, from another replica) into
/// `into`: the larger tag for a register (a tombstone wins like any write), the merged
/// sibling state for an eventual key. Records of different keys or kinds are left
/// alone (`false`).
pub fn merge_entry(into: &mut SyncEntry, other: SyncEntry) -> bool {
    match (into, other) {
        (
            SyncEntry::Register { key, tag, value },
            SyncEntry::Register {
                key: other_key,
                tag: other_tag,
                value: other_value,
            },
        ) if *key == other_key => {
            if other_tag > *tag {
                *tag = other_tag;
                *value = other_value;
            }
            true
        }
        (
            SyncEntry::Eventual { key, state },
            SyncEntry::Eventual {
                key: other_key,
                state: other_state,
            },
        ) if *key == other_key => {
            state.merge(&other_state);
            true
        }
        _ => false,
    }
}

/// The ranges of `layout` whose replicas in `read` are not a majority of the range's
/// replicas, with those replicas: a backup from `read` alone could miss an
/// acknowledged write there. Empty when `read` covers the ring.
pub fn ranges_without_majority(
    layout: &RingLayout,
    read: &BTreeSet<NodeId>,
) -> Vec<(TokenRange, Vec<NodeId>)> {
    layout
        .segments()
        .into_iter()
        .filter(|(_, owners)| {
            let held = owners.iter().filter(|id| read.contains(id)).count();
            held < owners.len() / 2 + 1
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::eventual::stored::eventual_key;
    use crate::node::stored::data_key;
    use crate::protocol::SiblingState;
    use crate::ring::NodeSpec;
    use crate::storage::blockstore::MemoryStore;
    use crate::storage::lsm::{LsmEngine, LsmOptions};
    use crate::storage::{WriteBatch, WriteOptions};
    use crate::versioning::{Tag, VersionVector};
    use std::sync::Arc;

    fn tag(counter: u64, node: u64) -> Tag {
        Tag {
            counter,
            node: NodeId(node),
        }
    }

    fn engine() -> LsmEngine {
        LsmEngine::open(Arc::new(MemoryStore::new()), LsmOptions::tiny()).expect("open")
    }

    fn engine_with(registers: usize, eventual: usize, value_bytes: usize) -> LsmEngine {
        let engine = engine();
        let mut batch = WriteBatch::new();
        for i in 0..registers {
            let record = Stored::Register {
                tag: tag(i as u64 + 1, 1),
                value: (i % 5 != 0).then(|| vec![b'v'; value_bytes]),
            };
            batch.put(
                data_key(format!("k{i:05}").as_bytes()),
                record.encode().expect("encodes"),
            );
        }
        for i in 0..eventual {
            let mut state = SiblingState::new();
            state
                .update(&VersionVector::default(), NodeId(2), Some(vec![b'e']))
                .expect("dot");
            let record = EventualRecord::Siblings(state);
            batch.put(
                eventual_key(format!("e{i:05}").as_bytes()),
                record.encode().expect("encodes"),
            );
        }
        // Other prefixes a replica holds must never appear in a backup.
        batch.put(b"m/identity".to_vec(), b"x".to_vec());
        batch.put(b"p/somewhere".to_vec(), b"x".to_vec());
        engine
            .write(&batch, WriteOptions::default())
            .expect("write");
        engine
    }

    fn all_pages(engine: &dyn Engine, limit: usize) -> (Vec<SyncEntry>, usize) {
        let mut out = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let page = backup_page(engine, cursor.as_ref(), limit).expect("page");
            pages += 1;
            assert!(pages < 10_000, "the stream never ends");
            out.extend(page.entries);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return (out, pages),
            }
        }
    }

    #[test]
    fn pages_visit_every_record_once_in_order() {
        for (registers, eventual, limit) in [
            (0, 0, 10),
            (7, 0, 3),
            (0, 9, 4),
            (300, 40, 256),
            (10, 10, 10),
        ] {
            let engine = engine_with(registers, eventual, 8);
            let (entries, _) = all_pages(&engine, limit);
            assert_eq!(
                entries.len(),
                registers + eventual,
                "{registers}/{eventual}/{limit}"
            );
            let order: Vec<_> = entries.iter().map(entry_order).collect();
            assert!(order.windows(2).all(|w| w[0] < w[1]), "strictly ascending");
            // Tombstones are part of the backup.
            assert_eq!(
                entries
                    .iter()
                    .filter(|e| matches!(e, SyncEntry::Register { value: None, .. }))
                    .count(),
                registers.div_ceil(5)
            );
        }
    }

    #[test]
    fn pages_stop_at_the_byte_bound() {
        let engine = engine_with(40, 0, 100_000);
        let (entries, pages) = all_pages(&engine, 256);
        assert_eq!(entries.len(), 40);
        assert!(
            pages >= 4,
            "40 × 100 kB needs several 1 MiB pages, got {pages}"
        );
        let page = backup_page(&engine, None, 256).expect("page");
        let size: usize = page
            .entries
            .iter()
            .map(|e| match e {
                SyncEntry::Register { key, value, .. } => {
                    key.len() + value.as_ref().map_or(0, Vec::len)
                }
                SyncEntry::Eventual { key, .. } => key.len(),
            })
            .sum();
        assert!(size <= BACKUP_PAGE_BYTES_MAX);
    }

    #[test]
    fn a_corrupt_record_is_an_error_naming_its_key() {
        let engine = engine();
        let mut batch = WriteBatch::new();
        batch.put(data_key(b"bad"), vec![9, 9, 9]);
        engine
            .write(&batch, WriteOptions::default())
            .expect("write");
        let error = backup_page(&engine, None, 10).expect_err("corrupt");
        assert!(matches!(error, BackupError::Corrupt { ref key, .. } if key == b"bad"));
    }

    #[test]
    fn merge_keeps_the_largest_tag_tombstones_included_and_unions_siblings() {
        let mut a = SyncEntry::Register {
            key: b"k".to_vec(),
            tag: tag(3, 1),
            value: Some(b"old".to_vec()),
        };
        let deleted = SyncEntry::Register {
            key: b"k".to_vec(),
            tag: tag(4, 2),
            value: None,
        };
        assert!(merge_entry(&mut a, deleted.clone()));
        assert_eq!(a, deleted);
        let stale = SyncEntry::Register {
            key: b"k".to_vec(),
            tag: tag(2, 3),
            value: Some(b"stale".to_vec()),
        };
        assert!(merge_entry(&mut a, stale));
        assert_eq!(a, deleted, "a stale copy never wins over the tombstone");
        let other_key = SyncEntry::Register {
            key: b"j".to_vec(),
            tag: tag(9, 1),
            value: None,
        };
        assert!(!merge_entry(&mut a, other_key));

        let mut left = SiblingState::new();
        left.update(&VersionVector::default(), NodeId(1), Some(b"x".to_vec()))
            .expect("dot");
        let mut right = SiblingState::new();
        right
            .update(&VersionVector::default(), NodeId(2), Some(b"y".to_vec()))
            .expect("dot");
        let mut merged = SyncEntry::Eventual {
            key: b"e".to_vec(),
            state: left,
        };
        assert!(merge_entry(
            &mut merged,
            SyncEntry::Eventual {
                key: b"e".to_vec(),
                state: right,
            }
        ));
        let SyncEntry::Eventual { state, .. } = merged else {
            panic!("eventual")
        };
        let mut values: Vec<_> = state.values().cloned().collect();
        values.sort();
        assert_eq!(values, vec![Some(b"x".to_vec()), Some(b"y".to_vec())]);
    }

    #[test]
    fn coverage_needs_a_majority_of_every_range() {
        let mut layout = RingLayout::new(3);
        for id in 1..=4 {
            layout = layout.with_node(NodeSpec::new(id, "z", 1)).expect("node");
        }
        let all: BTreeSet<NodeId> = (1..=4).map(NodeId).collect();
        assert!(ranges_without_majority(&layout, &all).is_empty());
        let three: BTreeSet<NodeId> = (1..=3).map(NodeId).collect();
        assert!(
            ranges_without_majority(&layout, &three).is_empty(),
            "one node of four missing leaves 2 of 3 replicas everywhere"
        );
        let two: BTreeSet<NodeId> = (1..=2).map(NodeId).collect();
        let missing = ranges_without_majority(&layout, &two);
        assert!(!missing.is_empty());
        for (_, owners) in &missing {
            assert!(owners.iter().filter(|id| two.contains(id)).count() < 2);
        }
    }
}

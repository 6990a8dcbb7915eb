//! Streaming moved ranges to their new replicas (protocol: `protocol/membership.rs`).
//!
//! A new replica X of a moved range needs every value acknowledged on the old layout:
//! such a value is on a majority of the range's old replicas, so X pulls the range from
//! old replicas until, for each of its moved ranges, the ones it has fully read (itself
//! included, if it was an old replica too) form a majority of the old replicas — or,
//! in a change that removes a member, every old replica but that one (`range_readable`:
//! how a dead member of an N = 2 ring is removed). Then X is *synced*. Sources are
//! pulled in parallel; dead ones are simply never finished.
//!
//! Before it pulls, X drops its own registers in the ranges it gains without being an
//! old replica of them (`wipe_gained`): left from an earlier layout in which it
//! replicated them, they may be older than what the sources hold, and where a source
//! holds *nothing* because it purged a tombstone (`node/purge/`), such a copy would be
//! taken for the latest. Only records with a tag from before the change's epoch go:
//! a write X accepted at that epoch has a newer tag, except a read's write-back of an
//! older value, which a majority of the old replicas also holds (joint quorums), so the
//! pull brings it back before X counts as synced.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::protocol::antientropy::EntryVersion;
use crate::protocol::{
    cursor_digest, SyncCursor, SyncEntry, SyncPage, SYNC_PAGE_BYTES_MAX, SYNC_PAGE_ENTRIES_MAX,
};
use crate::ring::history::range_readable;
use crate::ring::{epoch_tag_base, key_position, LayoutHistory, NodeId, Position, TokenRange};
use crate::storage::{prefix_successor, Engine, WriteBatch, WriteOptions};
use crate::versioning::Tag;

use super::super::ae::index::{self, PageLimits};
use super::super::eventual::stored::{EventualRecord, EVENTUAL_PREFIX};
use super::super::replica::{read_register, ReplicaError};

/// Eventual records examined per page (most may fall outside the stream's ranges).
const EVENTUAL_SCAN_PER_PAGE: usize = 256;

/// The ranges `source` streams to `target` in the history's change: moved ranges where
/// `source` is an old and `target` a new replica. In ring order (both sides compute the
/// same list, so a cursor's span index means the same range on both).
pub(crate) fn stream_ranges(
    history: &LayoutHistory,
    source: NodeId,
    target: NodeId,
) -> Vec<TokenRange> {
    history
        .moved()
        .iter()
        .filter(|(_, old, new)| old.contains(&source) && new.contains(&target))
        .map(|(range, _, _)| *range)
        .collect()
}

/// Inclusive position intervals of `ranges`, sorted, for membership tests.
fn intervals(ranges: &[TokenRange]) -> Vec<(Position, Position)> {
    let mut out: Vec<(Position, Position)> = ranges
        .iter()
        .flat_map(|range| range.to_inclusive_bounds())
        .collect();
    out.sort_unstable();
    out
}

fn covers(intervals: &[(Position, Position)], position: Position) -> bool {
    let after = intervals.partition_point(|(lo, _)| *lo <= position);
    after > 0
        && intervals
            .get(after - 1)
            .is_some_and(|(_, hi)| position <= *hi)
}

/// One page of what this node streams over `ranges`, from `cursor` (`None`: the start).
pub(crate) fn build_page(
    engine: &dyn Engine,
    epoch: u64,
    ranges: &[TokenRange],
    cursor: Option<SyncCursor>,
) -> Result<SyncPage, ReplicaError> {
    let mut entries = Vec::new();
    let mut bytes = 0usize;
    let position = cursor.clone().unwrap_or(SyncCursor::Registers {
        span: 0,
        after: None,
    });
    let next = match position {
        SyncCursor::Registers { span, after } => {
            let span = usize::try_from(span).unwrap_or(usize::MAX);
            let Some(spans) = ranges.get(span..) else {
                return Ok(page(
                    epoch,
                    cursor,
                    entries,
                    Some(SyncCursor::Eventual { after: None }),
                ));
            };
            let limits = PageLimits {
                entries_max: SYNC_PAGE_ENTRIES_MAX,
                key_bytes_max: SYNC_PAGE_BYTES_MAX,
            };
            let (found, complete) = index::scan_spans(
                engine,
                index::Kind::Registers,
                spans,
                after.as_deref(),
                limits,
            )
            .map_err(|error| ReplicaError::Index(error.to_string()))?;
            let mut last: Option<(usize, Vec<u8>)> = None;
            let mut truncated = false;
            for entry in found {
                let (tag, value) = read_register(engine, &entry.key)?;
                let size = entry.key.len() + value.as_ref().map_or(0, Vec::len);
                if !entries.is_empty() && bytes.saturating_add(size) > SYNC_PAGE_BYTES_MAX {
                    truncated = true;
                    break;
                }
                bytes = bytes.saturating_add(size);
                let offset = spans
                    .iter()
                    .position(|range| range.contains(entry.position))
                    .unwrap_or(0);
                last = Some((span + offset, entry.key.clone()));
                entries.push(SyncEntry::Register {
                    key: entry.key,
                    tag,
                    value,
                });
            }
            match last {
                Some((span, key)) if truncated || !complete => Some(SyncCursor::Registers {
                    span: u32::try_from(span).unwrap_or(u32::MAX),
                    after: Some(key),
                }),
                // Complete (or, impossibly, incomplete with nothing read: a page takes
                // at least one entry; moving on beats looping).
                _ => Some(SyncCursor::Eventual { after: None }),
            }
        }
        SyncCursor::Eventual { after } => {
            let areas = intervals(ranges);
            let start = match &after {
                Some(key) => Bound::Excluded(super::super::eventual::stored::eventual_key(key)),
                None => Bound::Included(EVENTUAL_PREFIX.to_vec()),
            };
            let end = prefix_successor(EVENTUAL_PREFIX);
            let end_bound = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            let found = engine.scan(
                start.as_ref().map(Vec::as_slice),
                end_bound,
                EVENTUAL_SCAN_PER_PAGE,
            )?;
            let exhausted = found.len() < EVENTUAL_SCAN_PER_PAGE;
            let mut last_key = None;
            let mut truncated = false;
            for (engine_key, record) in found {
                let Some(key) = engine_key.strip_prefix(EVENTUAL_PREFIX) else {
                    continue;
                };
                if covers(&areas, key_position(key)) {
                    let size = key.len() + record.len();
                    if !entries.is_empty() && bytes.saturating_add(size) > SYNC_PAGE_BYTES_MAX {
                        truncated = true;
                        break;
                    }
                    let state = EventualRecord::decode(&record)
                        .map_err(ReplicaError::CorruptRecord)?
                        .into_state();
                    bytes = bytes.saturating_add(size);
                    entries.push(SyncEntry::Eventual {
                        key: key.to_vec(),
                        state,
                    });
                }
                last_key = Some(key.to_vec());
            }
            match last_key {
                Some(key) if !exhausted || truncated => {
                    Some(SyncCursor::Eventual { after: Some(key) })
                }
                _ => None,
            }
        }
    };
    Ok(page(epoch, cursor, entries, next))
}

fn page(
    epoch: u64,
    cursor: Option<SyncCursor>,
    entries: Vec<SyncEntry>,
    next: Option<SyncCursor>,
) -> SyncPage {
    SyncPage {
        epoch,
        cursor: cursor_digest(cursor.as_ref()),
        entries,
        next,
    }
}

/// One source's stream, as the receiving node tracks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceStream {
    /// The pull in flight (`None`: the first).
    pub cursor: Option<SyncCursor>,
    pub done: bool,
    pub next_send_ms: u64,
    pub pages: u64,
    /// Why this node refused the source's page (an entry over its own limits): never
    /// done, never pulled again. Counting it read would leave a key out of a synced
    /// replica.
    pub refused: Option<String>,
}

/// This node's sync for one change: which ranges it gains, from whom.
#[derive(Debug, Clone)]
pub(crate) struct SyncJob {
    pub epoch: u64,
    /// Moved ranges this node is a new replica of, with their old replicas.
    pub needs: Vec<(TokenRange, Vec<NodeId>)>,
    pub sources: BTreeMap<NodeId, SourceStream>,
    pub entries_applied: u64,
    /// Whether [`wipe_gained`] ran for this job; no page is pulled or applied before.
    pub wiped: bool,
    /// Records it dropped.
    pub wiped_records: u64,
    /// The member the change removes, if any (`range_readable`).
    pub removed: Option<NodeId>,
}

impl SyncJob {
    pub fn new(history: &LayoutHistory, me: NodeId, now_ms: u64) -> SyncJob {
        let needs: Vec<(TokenRange, Vec<NodeId>)> = history
            .moved()
            .iter()
            .filter(|(_, _, new)| new.contains(&me))
            .map(|(range, old, _)| (*range, old.clone()))
            .collect();
        let sources = needs
            .iter()
            .flat_map(|(_, old)| old.iter().copied())
            .filter(|id| *id != me)
            .map(|id| {
                (
                    id,
                    SourceStream {
                        cursor: None,
                        done: false,
                        next_send_ms: now_ms,
                        pages: 0,
                        refused: None,
                    },
                )
            })
            .collect();
        SyncJob {
            epoch: history.epoch(),
            needs,
            sources,
            entries_applied: 0,
            wiped: false,
            wiped_records: 0,
            removed: history.removed(),
        }
    }

    /// Every needed range has enough of its old replicas fully read
    /// ([`range_readable`]: a majority, or all but the member the change removes); this
    /// node counts if it was one of them: it holds what it holds.
    pub fn complete(&self, me: NodeId) -> bool {
        self.needs.iter().all(|(_, old)| {
            range_readable(old, self.removed, |id| {
                id == me || self.sources.get(&id).is_some_and(|s| s.done)
            })
        })
    }

    /// Ranges it gains without being an old replica of them.
    fn gained(&self, me: NodeId) -> Vec<TokenRange> {
        self.needs
            .iter()
            .filter(|(_, old)| !old.contains(&me))
            .map(|(range, _)| *range)
            .collect()
    }

    pub fn sources_done(&self) -> usize {
        self.sources.values().filter(|s| s.done).count()
    }
}

/// Drops this node's registers in the ranges `job` gains without it being an old
/// replica, whose tag is from before the job's epoch (see the module docs), durably.
/// Returns how many it dropped. Paged: one engine batch per page.
pub(crate) fn wipe_gained(
    engine: &dyn Engine,
    job: &SyncJob,
    me: NodeId,
) -> Result<u64, ReplicaError> {
    let gained = job.gained(me);
    let base = epoch_tag_base(job.epoch);
    let limits = PageLimits {
        entries_max: SYNC_PAGE_ENTRIES_MAX,
        key_bytes_max: SYNC_PAGE_BYTES_MAX,
    };
    let mut dropped = 0u64;
    for range in gained {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let (entries, complete) = index::scan_spans(
                engine,
                index::Kind::Registers,
                &[range],
                after.as_deref(),
                limits,
            )
            .map_err(|error| ReplicaError::Index(error.to_string()))?;
            let mut batch = WriteBatch::new();
            for entry in &entries {
                let EntryVersion::Register { tag, .. } = entry.version else {
                    continue;
                };
                if tag.counter < base && tag != Tag::ZERO {
                    batch.delete(super::super::stored::data_key(&entry.key));
                    batch.delete(index::index_key(entry.position, &entry.key));
                    dropped += 1;
                }
            }
            if !batch.is_empty() {
                engine.write(&batch, WriteOptions::DURABLE)?;
            }
            match entries.last() {
                Some(last) if !complete => after = Some(last.key.clone()),
                _ => break,
            }
        }
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::node::replica::{apply_register, Promises};
    use crate::protocol::{encode, PeerMessage, FRAME_SIZE_BYTES_MAX};
    use crate::storage::blockstore::MemoryStore;
    use crate::storage::lsm::{LsmEngine, LsmOptions};
    use crate::versioning::Tag;

    #[test]
    fn pages_stay_within_a_frame_and_the_cursor_neither_skips_nor_repeats() {
        let engine =
            LsmEngine::open(Arc::new(MemoryStore::new()), LsmOptions::tiny()).expect("open");
        let mut written = Vec::new();
        for i in 0..40u64 {
            let key = format!("key-{i}").into_bytes();
            // Mixed sizes: many small values and some close to the value limit.
            let size = if i % 7 == 0 { 900 << 10 } else { 100 };
            let tag = Tag {
                counter: i + 1,
                node: NodeId(1),
            };
            apply_register(
                &engine,
                &key,
                tag,
                Some(vec![i as u8; size]),
                Promises::Respect,
            )
            .expect("write");
            written.push(key);
        }
        let ranges = [TokenRange::new(0, 0)];
        let mut cursor = None;
        let mut seen = Vec::new();
        for _ in 0..1000 {
            let page = build_page(&engine, 2, &ranges, cursor.clone()).expect("page");
            assert_eq!(page.cursor, cursor_digest(cursor.as_ref()));
            let frame = encode(&PeerMessage::SyncPage(page.clone())).expect("fits a frame");
            assert!(frame.len() <= FRAME_SIZE_BYTES_MAX);
            for entry in &page.entries {
                if let SyncEntry::Register { key, .. } = entry {
                    seen.push(key.clone());
                }
            }
            match page.next {
                None => break,
                next => cursor = next,
            }
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), seen.len(), "no entry twice");
        written.sort();
        assert_eq!(sorted, written, "every entry once");
    }
}

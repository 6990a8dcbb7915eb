//! The position indexes: engine key `p/ ‖ position (u64 BE) ‖ user key`, value the
//! register's canonical version (`version.rs`, 18 bytes); and for eventual keys
//! `q/ ‖ position (u64 BE) ‖ user key`, value the state's version (9 bytes). One index
//! per [`Kind`], because a user key may hold a register and an eventual state at once.
//!
//! Why: data keys (`d/ ‖ user key`) are ordered by key bytes, but Merkle buckets are
//! arcs of ring positions. Listing a differing bucket's keys from `d/` alone would scan
//! the whole store per exchange. With the index, a bucket is one or two range scans of
//! small entries, and the versions come with them (no record, and no value up to 1 MiB,
//! is read to compare). It also makes the open-time tree build a scan of `p/`, not of
//! the values.
//!
//! Invariants (for `q/` read `e/` for `d/`; its marker is `m/eventual_index`, and
//! eventual states are never deleted today):
//! - Every `d/` write puts the key's `p/` entry **in the same engine batch**
//!   ([`put_in_batch`], called by `replica::apply_register`), so after any crash the
//!   index matches the data exactly. A purge of a `d/` record (tombstone GC, not built
//!   yet) must delete its `p/` entry in the same batch as well.
//! - `m/position_index` marks an index that covers every `d/` record. A store without it
//!   (written by a build before the index existed) is indexed on open by one scan of
//!   `d/` ([`ensure`]); the marker is written durably last, so a crash mid-rebuild
//!   simply rebuilds again (the puts are idempotent: a `p/` key is a function of the
//!   user key, and `d/` records are never deleted today, so no stale entry survives).
//!   Downgrading to a build without the index and upgrading again would leave the
//!   marker in place with an incomplete index: delete `m/position_index` first.

use std::ops::Bound;

use thiserror::Error;

use crate::ring::{key_position, Position, TokenRange};
use crate::storage::{prefix_successor, Engine, StorageError, WriteBatch, WriteOptions};

use crate::protocol::antientropy::EntryVersion;

use super::super::eventual::stored::{EventualRecord, EVENTUAL_PREFIX};
use super::super::stored::{Stored, DATA_PREFIX};
use super::span;
use super::version::{EventualVersion, RegisterVersion};

/// Engine key prefix of the position index.
pub(crate) const INDEX_PREFIX: &[u8] = b"p/";
/// Engine key prefix of the eventual keys' position index.
pub(crate) const EVENTUAL_INDEX_PREFIX: &[u8] = b"q/";
/// Present iff the index covers every `d/` record.
pub(crate) const INDEX_MARKER_KEY: &[u8] = b"m/position_index";
/// Present iff the `q/` index covers every `e/` record.
pub(crate) const EVENTUAL_INDEX_MARKER_KEY: &[u8] = b"m/eventual_index";
const INDEX_MARKER_V1: &[u8] = &[1];

/// Which records an index covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Linearizable registers (`d/`), indexed under `p/`.
    Registers,
    /// Eventual sibling states (`e/`), indexed under `q/`.
    Eventual,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Registers, Kind::Eventual];

    /// The kind a key page compares (`KeyPage::eventual`).
    pub fn of_page(eventual: bool) -> Kind {
        if eventual {
            Kind::Eventual
        } else {
            Kind::Registers
        }
    }

    fn prefix(self) -> &'static [u8] {
        match self {
            Kind::Registers => INDEX_PREFIX,
            Kind::Eventual => EVENTUAL_INDEX_PREFIX,
        }
    }

    fn decode(self, value: &[u8]) -> Option<EntryVersion> {
        match self {
            Kind::Registers => RegisterVersion::decode(value).map(EntryVersion::from),
            Kind::Eventual => EventualVersion::decode(value).map(EntryVersion::from),
        }
    }
}
/// `d/` records read per page while rebuilding: records carry values (up to the value
/// limit each), so pages are small.
const REBUILD_PAGE_RECORDS: usize = 32;
/// `p/` entries read per page while loading the trees (entries are key + 18 bytes).
const LOAD_PAGE_ENTRIES: usize = 1024;

#[derive(Debug, Error)]
pub(crate) enum IndexError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("position index entry {0} is unreadable")]
    Corrupt(String),
}

/// One index entry: a key this replica holds and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub position: Position,
    pub key: Vec<u8>,
    pub version: EntryVersion,
}

/// Bounds on one page of entries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageLimits {
    pub entries_max: usize,
    /// Key bytes, except that the first entry is always taken.
    pub key_bytes_max: usize,
}

pub(crate) fn index_key(position: Position, key: &[u8]) -> Vec<u8> {
    kind_key(Kind::Registers, position, key)
}

fn kind_key(kind: Kind, position: Position, key: &[u8]) -> Vec<u8> {
    let prefix = kind.prefix();
    let mut engine_key = Vec::with_capacity(prefix.len() + 8 + key.len());
    engine_key.extend_from_slice(prefix);
    engine_key.extend_from_slice(&position.to_be_bytes());
    engine_key.extend_from_slice(key);
    engine_key
}

/// Adds `key`'s index entry to `batch` (the batch that writes its `d/` record).
pub(crate) fn put_in_batch(batch: &mut WriteBatch, key: &[u8], version: &RegisterVersion) {
    batch.put(index_key(key_position(key), key), version.encode().to_vec());
}

/// Adds eventual `key`'s `q/` entry to `batch` (the batch that writes its `e/` record).
pub(crate) fn put_eventual_in_batch(batch: &mut WriteBatch, key: &[u8], version: &EventualVersion) {
    batch.put(
        kind_key(Kind::Eventual, key_position(key), key),
        version.encode().to_vec(),
    );
}

/// The version eventual `key`'s `q/` entry holds (`None`: no record, or an
/// unreadable entry, which then stays out of the tree like one skipped at load).
pub(crate) fn eventual_version(
    engine: &dyn Engine,
    key: &[u8],
) -> Result<Option<EventualVersion>, StorageError> {
    let entry = engine.get(&kind_key(Kind::Eventual, key_position(key), key))?;
    Ok(entry.and_then(|bytes| EventualVersion::decode(&bytes)))
}

/// Decodes one `p/` (or `q/`) entry; `None` if malformed or if the position is not the
/// key's (which would file it under the wrong bucket).
fn parse(kind: Kind, engine_key: &[u8], value: &[u8]) -> Option<IndexEntry> {
    let rest = engine_key.strip_prefix(kind.prefix())?;
    let (position, key) = rest.split_first_chunk::<8>()?;
    let position = u64::from_be_bytes(*position);
    if key_position(key) != position {
        return None;
    }
    Some(IndexEntry {
        position,
        key: key.to_vec(),
        version: kind.decode(value)?,
    })
}

fn corrupt(engine_key: &[u8]) -> IndexError {
    IndexError::Corrupt(String::from_utf8_lossy(engine_key).into_owned())
}

/// The exclusive end of a piece ending at `hi`: the first index key past position `hi`.
fn piece_end(kind: Kind, hi: Position) -> Option<Vec<u8>> {
    match hi.checked_add(1) {
        Some(next) => Some(kind_key(kind, next, b"")),
        None => prefix_successor(kind.prefix()),
    }
}

/// This replica's register entries at ring positions `from ..= to`, in position order,
/// for a SCAN page (`node/coordinator/scan.rs`): within `limits` (the first position is
/// always taken whole), and **never splitting a position**: a page that stops before
/// `to` ends with every entry of its last position, so a cursor can be a bare
/// position. `true`: the page reaches `to`. Cost: one engine scan of `entries_max + 1`
/// entries, plus one for the rest of a position they end inside.
pub(crate) fn scan_positions(
    engine: &dyn Engine,
    from: Position,
    to: Position,
    limits: PageLimits,
) -> Result<(Vec<IndexEntry>, bool), IndexError> {
    debug_assert!(from <= to, "a scan page runs forward");
    let kind = Kind::Registers;
    let start = kind_key(kind, from, b"");
    let end = piece_end(kind, to);
    let end_bound = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    let limit = limits.entries_max.max(1);
    // One more than fits: finding it means the page stops before `to`.
    let found = engine.scan(Bound::Included(start.as_slice()), end_bound, limit + 1)?;
    let reached = found.len() <= limit;
    let mut entries: Vec<IndexEntry> = Vec::with_capacity(found.len());
    let mut key_bytes = 0usize;
    for (engine_key, value) in found {
        let entry = parse(kind, &engine_key, &value).ok_or_else(|| corrupt(&engine_key))?;
        let new_position = entries
            .last()
            .is_some_and(|last| last.position != entry.position);
        let full = entries.len() >= limit || key_bytes + entry.key.len() > limits.key_bytes_max;
        if new_position && full {
            return Ok((entries, false));
        }
        key_bytes += entry.key.len();
        entries.push(entry);
    }
    let Some(last) = entries.last() else {
        return Ok((entries, true));
    };
    if reached {
        return Ok((entries, true));
    }
    // The `limit + 1` entries end inside one position's run: finish that position.
    let position = last.position;
    let after = kind_key(kind, position, &last.key);
    let run_end = piece_end(kind, position);
    let run_end = run_end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    let rest = engine.scan(
        Bound::Excluded(after.as_slice()),
        run_end,
        SAME_POSITION_MAX + 1,
    )?;
    if rest.len() > SAME_POSITION_MAX {
        // Only a crafted keyspace (a 64-bit multicollision) gets here; a page that
        // skipped some of these keys would break the scan's promise, so refuse.
        return Err(IndexError::Corrupt(format!(
            "more than {SAME_POSITION_MAX} keys share ring position {position}"
        )));
    }
    for (engine_key, value) in rest {
        entries.push(parse(kind, &engine_key, &value).ok_or_else(|| corrupt(&engine_key))?);
    }
    Ok((entries, position == to))
}

/// Keys sharing one ring position that a scan page takes beyond its limit, at most.
/// Distinct keys share a 64-bit SipHash position only by collision.
const SAME_POSITION_MAX: usize = 1024;

/// This replica's entries of `spans` (disjoint, in range order) strictly after `after`
/// (a key inside the first span; `None`: from its start), in range order, within
/// `limits`. The flag says the entries reach the last span's end. Cost: one engine scan
/// per span piece visited, at most `entries_max + 1` entries read in all.
pub(crate) fn scan_spans(
    engine: &dyn Engine,
    kind: Kind,
    spans: &[TokenRange],
    after: Option<&[u8]>,
    limits: PageLimits,
) -> Result<(Vec<IndexEntry>, bool), IndexError> {
    let mut page = Page {
        kind,
        entries: Vec::new(),
        key_bytes: 0,
        limits,
    };
    for (i, span_arc) in spans.iter().enumerate() {
        let cursor = if i == 0 { after } else { None };
        if !page.scan(engine, span_arc, cursor)? {
            return Ok((page.entries, false));
        }
    }
    Ok((page.entries, true))
}

struct Page {
    kind: Kind,
    entries: Vec<IndexEntry>,
    key_bytes: usize,
    limits: PageLimits,
}

impl Page {
    /// Appends `span_arc`'s entries after `after`; `false` once a limit is reached.
    fn scan(
        &mut self,
        engine: &dyn Engine,
        span_arc: &TokenRange,
        after: Option<&[u8]>,
    ) -> Result<bool, IndexError> {
        let pieces = span::pieces(span_arc);
        let after = after.map(|key| (key_position(key), key));
        let first_piece = match after {
            None => 0,
            Some((position, _)) => match pieces
                .iter()
                .position(|(lo, hi)| (*lo..=*hi).contains(&position))
            {
                Some(piece) => piece,
                // Callers validate cursors; one outside the span has nothing after it.
                None => return Ok(true),
            },
        };
        for (piece, (lo, hi)) in pieces.iter().enumerate().skip(first_piece) {
            let start = match after {
                Some((position, key)) if piece == first_piece => {
                    Bound::Excluded(kind_key(self.kind, position, key))
                }
                _ => Bound::Included(kind_key(self.kind, *lo, b"")),
            };
            let end = piece_end(self.kind, *hi);
            let end_bound = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            // One more than still fits: getting it means the page is full.
            let limit = self.limits.entries_max.saturating_sub(self.entries.len()) + 1;
            let found = engine.scan(start.as_ref().map(Vec::as_slice), end_bound, limit)?;
            let exhausted = found.len() < limit;
            for (engine_key, value) in found {
                let entry =
                    parse(self.kind, &engine_key, &value).ok_or_else(|| corrupt(&engine_key))?;
                let key_bytes = self.key_bytes.saturating_add(entry.key.len());
                let over_bytes = key_bytes > self.limits.key_bytes_max;
                if self.entries.len() >= self.limits.entries_max
                    || (over_bytes && !self.entries.is_empty())
                {
                    return Ok(false);
                }
                self.key_bytes = key_bytes;
                self.entries.push(entry);
            }
            if !exhausted {
                // Unreachable (the extra entry above returns), kept so a change to the
                // limit arithmetic can only cost a shorter page, never skip entries.
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct EnsureReport {
    /// `Some(records indexed)` when the index was (re)built from `d/`.
    pub rebuilt: Option<u64>,
    /// `d/` records that could not be decoded (left out of the index).
    pub unreadable: u64,
}

/// Makes sure the `kind` index covers every record of its kind: if the marker is
/// missing, indexes every record with one paged scan (buffered batches), then writes
/// the marker durably (a durable batch implies every earlier batch is durable).
pub(crate) fn ensure(engine: &dyn Engine, kind: Kind) -> Result<EnsureReport, IndexError> {
    let (records, marker_key) = match kind {
        Kind::Registers => (DATA_PREFIX, INDEX_MARKER_KEY),
        Kind::Eventual => (EVENTUAL_PREFIX, EVENTUAL_INDEX_MARKER_KEY),
    };
    if engine.get(marker_key)?.is_some() {
        return Ok(EnsureReport::default());
    }
    let end = prefix_successor(records);
    let end_bound = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    let mut report = EnsureReport {
        rebuilt: Some(0),
        unreadable: 0,
    };
    let mut indexed = 0u64;
    let mut last: Option<Vec<u8>> = None;
    loop {
        let start = match &last {
            Some(key) => Bound::Excluded(key.as_slice()),
            None => Bound::Included(records),
        };
        let page = engine.scan(start, end_bound, REBUILD_PAGE_RECORDS)?;
        let done = page.len() < REBUILD_PAGE_RECORDS;
        let mut batch = WriteBatch::new();
        for (engine_key, record) in &page {
            let Some(key) = engine_key.strip_prefix(records) else {
                continue;
            };
            let indexed_ok = match kind {
                Kind::Registers => match Stored::decode(record) {
                    Ok(stored) => {
                        if let Some((tag, value)) = stored.register() {
                            put_in_batch(&mut batch, key, &RegisterVersion::of(tag, value));
                        }
                        true
                    }
                    Err(_) => false,
                },
                Kind::Eventual => match EventualRecord::decode(record) {
                    Ok(_) => {
                        let version = EventualVersion::of_record(record);
                        put_eventual_in_batch(&mut batch, key, &version);
                        true
                    }
                    Err(_) => false,
                },
            };
            if indexed_ok {
                indexed += 1;
            } else {
                report.unreadable += 1;
            }
        }
        if !batch.is_empty() {
            engine.write(&batch, WriteOptions::BUFFERED)?;
        }
        last = page.into_iter().next_back().map(|(key, _)| key);
        if done || last.is_none() {
            break;
        }
    }
    let mut marker = WriteBatch::new();
    marker.put(marker_key, INDEX_MARKER_V1);
    engine.write(&marker, WriteOptions::DURABLE)?;
    report.rebuilt = Some(indexed);
    Ok(report)
}

/// Calls `each` for every index entry (one paged scan of `p/`), for the open-time tree
/// build. Malformed entries are skipped and counted (the returned number): they cannot
/// be compared, and refusing to open over them would take the replica down for an
/// anti-entropy problem.
pub(crate) fn for_each(
    engine: &dyn Engine,
    kind: Kind,
    mut each: impl FnMut(&IndexEntry),
) -> Result<u64, IndexError> {
    let prefix = kind.prefix();
    let end = prefix_successor(prefix);
    let end_bound = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    let mut malformed = 0u64;
    let mut last: Option<Vec<u8>> = None;
    loop {
        let start = match &last {
            Some(key) => Bound::Excluded(key.as_slice()),
            None => Bound::Included(prefix),
        };
        let page = engine.scan(start, end_bound, LOAD_PAGE_ENTRIES)?;
        let done = page.len() < LOAD_PAGE_ENTRIES;
        for (engine_key, value) in &page {
            match parse(kind, engine_key, value) {
                Some(entry) => each(&entry),
                None => malformed += 1,
            }
        }
        last = page.into_iter().next_back().map(|(key, _)| key);
        if done || last.is_none() {
            return Ok(malformed);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::node::stored::data_key;
    use crate::ring::NodeId;
    use crate::storage::blockstore::MemoryStore;
    use crate::storage::lsm::{LsmEngine, LsmOptions};
    use crate::versioning::Tag;

    fn engine() -> LsmEngine {
        LsmEngine::open(Arc::new(MemoryStore::new()), LsmOptions::tiny()).expect("open")
    }

    fn version(counter: u64) -> RegisterVersion {
        RegisterVersion {
            tag: Tag {
                counter,
                node: NodeId(1),
            },
            tombstone: counter.is_multiple_of(2),
        }
    }

    #[test]
    fn position_pages_cover_a_range_once_and_end_on_position_boundaries() {
        let engine = engine();
        let keys: Vec<Vec<u8>> = (0..300).map(|i| format!("k{i}").into_bytes()).collect();
        index(&engine, &keys);
        let mut positions: Vec<u64> = keys.iter().map(|k| key_position(k)).collect();
        positions.sort_unstable();
        // A sub-range: from the 50th key's position to the 250th's.
        let (from, to) = (positions[50], positions[250]);
        let want: Vec<u64> = positions
            .iter()
            .copied()
            .filter(|p| (from..=to).contains(p))
            .collect();
        for limit in [1, 2, 7, 64, 1000] {
            let limits = PageLimits {
                entries_max: limit,
                key_bytes_max: usize::MAX,
            };
            let mut got = Vec::new();
            let mut cursor = from;
            loop {
                let (page, complete) =
                    scan_positions(&engine, cursor, to, limits).expect("scan page");
                assert!(page.len() <= limit || complete, "limit {limit} kept");
                got.extend(page.iter().map(|e| e.position));
                if complete {
                    break;
                }
                let last = page.last().expect("an early stop has entries").position;
                assert!(last < to, "an early stop ends before `to`");
                cursor = last + 1;
            }
            assert_eq!(got, want, "limit {limit}: every position once, in order");
        }
        // The whole ring, and an empty stretch.
        let all = PageLimits {
            entries_max: 1000,
            key_bytes_max: usize::MAX,
        };
        let (page, complete) = scan_positions(&engine, 0, u64::MAX, all).expect("scan");
        assert!(complete);
        assert_eq!(page.len(), keys.len());
        let (page, complete) =
            scan_positions(&engine, positions[10] + 1, positions[11] - 1, all).expect("scan");
        assert!(complete && page.is_empty());
    }

    fn index(engine: &dyn Engine, keys: &[Vec<u8>]) {
        let mut batch = WriteBatch::new();
        for (i, key) in keys.iter().enumerate() {
            put_in_batch(&mut batch, key, &version(i as u64 + 1));
        }
        engine.write(&batch, WriteOptions::DURABLE).expect("write");
    }

    fn keys(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("key-{i}").into_bytes()).collect()
    }

    const ALL: PageLimits = PageLimits {
        entries_max: usize::MAX - 1,
        key_bytes_max: usize::MAX,
    };

    /// Keys of `keys` inside `span`, in span order (the reference for scans).
    fn expected(span_arc: &TokenRange, keys: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut inside: Vec<Vec<u8>> = keys
            .iter()
            .filter(|key| span_arc.contains(key_position(key)))
            .cloned()
            .collect();
        inside.sort_by(|a, b| span::compare_keys(span_arc, a, b));
        inside
    }

    #[test]
    fn index_keys_sort_by_position_then_key() {
        let a = index_key(1, b"zz");
        let b = index_key(2, b"a");
        let c = index_key(2, b"b");
        let d = index_key(0x0100, b"");
        assert!(a < b && b < c && c < d);
        let entry = parse(
            Kind::Registers,
            &index_key(key_position(b"k"), b"k"),
            &version(3).encode(),
        )
        .expect("parses");
        assert_eq!(entry.key, b"k".to_vec());
        assert_eq!(entry.version, EntryVersion::from(version(3)));
        // Wrong position, bad value, foreign prefix: rejected.
        assert!(parse(
            Kind::Registers,
            &index_key(key_position(b"k") ^ 1, b"k"),
            &version(3).encode()
        )
        .is_none());
        assert!(parse(
            Kind::Registers,
            &index_key(key_position(b"k"), b"k"),
            &[1, 2]
        )
        .is_none());
        assert!(parse(Kind::Registers, b"d/k", &version(3).encode()).is_none());
    }

    #[test]
    fn scans_match_a_filter_for_plain_wrapping_and_full_spans() {
        let engine = engine();
        let keys = keys(300);
        index(&engine, &keys);
        let third = u64::MAX / 3;
        let spans = [
            TokenRange::new(third, 2 * third),
            TokenRange::new(2 * third, third), // wraps
            TokenRange::new(third, third),     // full ring from an inner start
            TokenRange::FULL,
            TokenRange::new(u64::MAX - 1, 0), // tiny, wrapping
        ];
        for span_arc in spans {
            let (found, complete) =
                scan_spans(&engine, Kind::Registers, &[span_arc], None, ALL).expect("scan");
            assert!(complete);
            let found: Vec<Vec<u8>> = found.into_iter().map(|e| e.key).collect();
            assert_eq!(found, expected(&span_arc, &keys), "{span_arc}");
        }
    }

    #[test]
    fn pages_resume_after_the_cursor_within_both_limits() {
        let engine = engine();
        let keys = keys(500);
        index(&engine, &keys);
        let third = u64::MAX / 3;
        for span_arc in [TokenRange::new(2 * third, third), TokenRange::new(9, 9)] {
            let limits = PageLimits {
                entries_max: 16,
                key_bytes_max: 100, // ~14 keys of 6-7 bytes: the byte bound bites first
            };
            let mut walked = Vec::new();
            let mut after: Option<Vec<u8>> = None;
            let mut pages = 0;
            loop {
                let (page, complete) = scan_spans(
                    &engine,
                    Kind::Registers,
                    &[span_arc],
                    after.as_deref(),
                    limits,
                )
                .expect("scan");
                pages += 1;
                let bytes: usize = page.iter().map(|e| e.key.len()).sum();
                assert!(page.len() <= 16 && bytes <= 100);
                assert!(complete || !page.is_empty());
                after = page.last().map(|e| e.key.clone()).or(after);
                walked.extend(page.into_iter().map(|e| e.key));
                if complete {
                    break;
                }
            }
            assert_eq!(walked, expected(&span_arc, &keys));
            assert!(pages > walked.len() / 16);
        }
        // Several spans in one page, in range order, resuming inside the first.
        let range = TokenRange::new(u64::MAX / 2, u64::MAX / 4);
        let q = u64::MAX / 8;
        let spans = [
            TokenRange::new(u64::MAX / 2, u64::MAX / 2 + q),
            TokenRange::new(u64::MAX - q, q),
            TokenRange::new(q + 5, u64::MAX / 4),
        ];
        let mut reference: Vec<Vec<u8>> = spans.iter().flat_map(|s| expected(s, &keys)).collect();
        let (first, _) = scan_spans(&engine, Kind::Registers, &spans, None, ALL).expect("scan");
        let first: Vec<Vec<u8>> = first.into_iter().map(|e| e.key).collect();
        assert_eq!(first, reference);
        let mut sorted = reference.clone();
        sorted.sort_by(|a, b| span::compare_keys(&range, a, b));
        assert_eq!(sorted, reference, "range order");
        let (rest, complete) =
            scan_spans(&engine, Kind::Registers, &spans, Some(&reference[3]), ALL).expect("scan");
        assert!(complete);
        reference.drain(..4);
        assert_eq!(
            rest.into_iter().map(|e| e.key).collect::<Vec<_>>(),
            reference
        );
        // A single key larger than the byte bound still makes a page (progress).
        let (page, complete) = scan_spans(
            &engine,
            Kind::Registers,
            &[TokenRange::FULL],
            None,
            PageLimits {
                entries_max: 4,
                key_bytes_max: 1,
            },
        )
        .expect("scan");
        assert_eq!((page.len(), complete), (1, false));
    }

    #[test]
    fn ensure_indexes_an_older_store_once() {
        let engine = engine();
        let keys = keys(100);
        let mut batch = WriteBatch::new();
        for (i, key) in keys.iter().enumerate() {
            let tag = Tag {
                counter: i as u64 + 1,
                node: NodeId(2),
            };
            let value = (i % 3 != 0).then(|| b"v".to_vec());
            let record = Stored::Register { tag, value }.encode().expect("encode");
            batch.put(data_key(key), record);
        }
        batch.put(data_key(b"garbage"), vec![0xff, 0xff]);
        engine.write(&batch, WriteOptions::DURABLE).expect("write");
        let report = ensure(&engine, Kind::Registers).expect("ensure");
        assert_eq!(
            report,
            EnsureReport {
                rebuilt: Some(100),
                unreadable: 1
            }
        );
        let mut loaded = Vec::new();
        assert_eq!(
            for_each(&engine, Kind::Registers, |e| loaded.push(e.clone())).expect("load"),
            0
        );
        assert_eq!(loaded.len(), 100);
        for entry in &loaded {
            let i = keys
                .iter()
                .position(|k| *k == entry.key)
                .expect("known key");
            let EntryVersion::Register { tag, tombstone } = entry.version else {
                panic!("a register entry");
            };
            assert_eq!(tag.counter, i as u64 + 1);
            assert_eq!(tombstone, i % 3 == 0);
        }
        // Marked: the next open does nothing.
        assert_eq!(
            ensure(&engine, Kind::Registers).expect("ensure"),
            EnsureReport::default()
        );
    }

    #[test]
    fn corrupt_entries_fail_scans_and_are_skipped_by_the_load() {
        let engine = engine();
        index(&engine, &keys(10));
        let mut batch = WriteBatch::new();
        batch.put(index_key(key_position(b"key-3"), b"key-3"), vec![7]);
        engine.write(&batch, WriteOptions::DURABLE).expect("write");
        assert!(matches!(
            scan_spans(&engine, Kind::Registers, &[TokenRange::FULL], None, ALL),
            Err(IndexError::Corrupt(_))
        ));
        let mut count = 0;
        assert_eq!(
            for_each(&engine, Kind::Registers, |_| count += 1).expect("load"),
            1
        );
        assert_eq!(count, 9);
    }
}

//! Scans of the keys this node holds as a replica: export pages (`LocalKeys`) and the
//! live-key count behind DBSIZE and status views. Hosts run them off the node's turn
//! where they can (the engine is `Sync`); they only read.

use std::ops::Bound;

use super::stored::{data_key, DATA_PREFIX};
use super::Stored;
use crate::storage::{prefix_successor, Engine, StorageError};

/// Most keys one `LocalKeys` page returns.
pub const LOCAL_KEYS_PAGE_MAX: usize = 1024;

/// Live (not deleted) keys this node holds as a replica, after `after`, at most `limit`;
/// `true` when the scan reached the end.
pub fn local_keys(
    engine: &dyn Engine,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<(Vec<Vec<u8>>, bool), StorageError> {
    let limit = limit.clamp(1, LOCAL_KEYS_PAGE_MAX);
    let start_key = after.map(data_key);
    let start = match &start_key {
        Some(key) => Bound::Excluded(key.as_slice()),
        None => Bound::Included(DATA_PREFIX),
    };
    let end_key = prefix_successor(DATA_PREFIX);
    let end = match &end_key {
        Some(key) => Bound::Excluded(key.as_slice()),
        None => Bound::Unbounded,
    };
    let entries = engine.scan(start, end, limit)?;
    let done = entries.len() < limit;
    let keys = entries
        .into_iter()
        .filter(|(_, value)| {
            Stored::decode(value)
                .ok()
                .and_then(|stored| stored.register().map(|(_, value)| value.is_some()))
                .unwrap_or(false)
        })
        .map(|(key, _)| key[DATA_PREFIX.len()..].to_vec())
        .collect();
    Ok((keys, done))
}

/// Engine prefix of the position index (`p/` + position + key → 18-byte version whose
/// last byte is the tombstone flag; docs/cluster-design.md, "Keys on a replica").
const POSITION_PREFIX: &[u8] = b"p/";
/// DBSIZE stops counting here (it is documented as approximate).
const COUNT_MAX: u64 = 10_000_000;

/// Live keys this node replicates, counted from the small position-index entries.
pub fn count_local_keys(engine: &dyn Engine) -> Result<u64, StorageError> {
    let end_key = prefix_successor(POSITION_PREFIX);
    let end = match &end_key {
        Some(key) => Bound::Excluded(key.as_slice()),
        None => Bound::Unbounded,
    };
    let mut count = 0u64;
    let mut last: Option<Vec<u8>> = None;
    loop {
        let start = match &last {
            Some(key) => Bound::Excluded(key.as_slice()),
            None => Bound::Included(POSITION_PREFIX),
        };
        let page = engine.scan(start, end, 4096)?;
        let full = page.len() == 4096;
        count += page
            .iter()
            .filter(|(_, version)| version.last() == Some(&0))
            .count() as u64;
        last = page.into_iter().last().map(|(key, _)| key);
        if !full || count >= COUNT_MAX {
            return Ok(count);
        }
    }
}

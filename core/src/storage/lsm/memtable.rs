use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::storage::{BatchOp, Lsn};

/// Per-entry bookkeeping charged against the memtable bound, beyond key and value bytes.
const ENTRY_OVERHEAD_BYTES: usize = 48;

/// The newest writes, ordered, in memory. Entries hold the latest value of a key, or
/// `None` for a tombstone that must shadow older tables until compaction drops it.
#[derive(Debug)]
pub struct Memtable {
    /// The commit log holding this memtable's writes; it may be deleted only once the
    /// memtable is in a table recorded by the manifest.
    pub log_id: u64,
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    size_bytes: usize,
    last_lsn: Lsn,
}

/// Lookup result shared by memtables and tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Value(Vec<u8>),
    Deleted,
}

impl Memtable {
    pub fn new(log_id: u64) -> Self {
        Self {
            log_id,
            inner: RwLock::new(Inner::default()),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies one batch. Batches arrive in LSN order (the commit leader applies them).
    pub fn apply(&self, lsn: Lsn, ops: &[BatchOp]) {
        let mut inner = self.write();
        debug_assert!(lsn > inner.last_lsn, "batches must apply in LSN order");
        inner.last_lsn = lsn;
        for op in ops {
            let value = op.value().map(<[u8]>::to_vec);
            let value_len = value.as_ref().map_or(0, Vec::len);
            match inner.entries.insert(op.key().to_vec(), value) {
                Some(old) => {
                    let old_len = old.map_or(0, |v| v.len());
                    inner.size_bytes = inner.size_bytes.saturating_sub(old_len) + value_len;
                }
                None => inner.size_bytes += op.key().len() + value_len + ENTRY_OVERHEAD_BYTES,
            }
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<Found> {
        self.read().entries.get(key).map(|v| match v {
            Some(v) => Found::Value(v.clone()),
            None => Found::Deleted,
        })
    }

    /// LSN of the newest batch applied; 0 when none.
    pub fn last_lsn(&self) -> Lsn {
        self.read().last_lsn
    }

    pub fn size_bytes(&self) -> usize {
        self.read().size_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.read().entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.read().entries.len()
    }

    /// Up to `count` entries from `start`, in key order. Iterators page through a live
    /// memtable with this so no lock is held between pages.
    pub fn page(&self, start: Bound<&[u8]>, count: usize) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.read()
            .entries
            .range::<[u8], _>((start, Bound::Unbounded))
            .take(count)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

//! Sorted sources over memtables and levels, for scans and compactions.
use std::ops::Bound;
use std::sync::Arc;

use super::memtable::Memtable;
use super::merge::Entry;
use super::version::TableHandle;
use crate::storage::error::Result;

/// Entries a memtable iterator copies out per lock acquisition.
const MEMTABLE_PAGE_ENTRIES: usize = 64;

/// Pages through a memtable that may still be receiving writes; no lock is held
/// between pages, so a long scan never blocks writers.
pub struct MemtableIter {
    memtable: Arc<Memtable>,
    next_start: Option<Bound<Vec<u8>>>,
    page: std::vec::IntoIter<Entry>,
}

impl MemtableIter {
    pub fn new(memtable: Arc<Memtable>, start: Bound<Vec<u8>>) -> Self {
        Self {
            memtable,
            next_start: Some(start),
            page: Vec::new().into_iter(),
        }
    }
}

impl Iterator for MemtableIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(entry) = self.page.next() {
            return Some(Ok(entry));
        }
        let start = self.next_start.take()?;
        let page = self.memtable.page(
            match &start {
                Bound::Included(k) => Bound::Included(k.as_slice()),
                Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
                Bound::Unbounded => Bound::Unbounded,
            },
            MEMTABLE_PAGE_ENTRIES,
        );
        if page.len() == MEMTABLE_PAGE_ENTRIES {
            self.next_start = page.last().map(|(k, _)| Bound::Excluded(k.clone()));
        }
        self.page = page.into_iter();
        self.page.next().map(Ok)
    }
}

/// Concatenates the disjoint, sorted tables of one level (L1 and deeper), opening each
/// table's iterator only when the previous one is exhausted.
pub struct LevelIter {
    tables: Vec<Arc<TableHandle>>,
    next_table: usize,
    start: Bound<Vec<u8>>,
    current: Option<Box<dyn Iterator<Item = Result<Entry>> + Send>>,
}

impl LevelIter {
    pub fn new(tables: Vec<Arc<TableHandle>>, start: Bound<Vec<u8>>) -> Self {
        // Skip tables that end before the start key.
        let first = match &start {
            Bound::Included(k) => tables.partition_point(|t| t.meta.largest_key < *k),
            Bound::Excluded(k) => tables.partition_point(|t| t.meta.largest_key <= *k),
            Bound::Unbounded => 0,
        };
        Self {
            tables,
            next_table: first,
            start,
            current: None,
        }
    }
}

impl Iterator for LevelIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(current) = &mut self.current {
                if let Some(item) = current.next() {
                    return Some(item);
                }
                self.current = None;
            }
            let table = self.tables.get(self.next_table)?;
            self.next_table += 1;
            // Only the first table visited can contain keys before the start bound.
            let start = std::mem::replace(&mut self.start, Bound::Unbounded);
            self.current = Some(Box::new(table.reader.iter(start)));
        }
    }
}

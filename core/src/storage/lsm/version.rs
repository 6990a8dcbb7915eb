use std::collections::HashSet;
use std::sync::Arc;

use super::memtable::Found;
use super::meta::TableMeta;
use super::sstable::{Lookup, TableReader};
use crate::storage::error::Result;

#[derive(Debug)]
pub struct TableHandle {
    pub meta: TableMeta,
    pub reader: Arc<TableReader>,
}

/// One immutable set of tables. Invariants: L0 is ordered newest first (by table id,
/// since flushes allocate ids in order and only flushes write L0); every deeper level is
/// sorted by smallest key with disjoint key ranges.
#[derive(Debug, Clone, Default)]
pub struct Version {
    pub levels: Vec<Vec<Arc<TableHandle>>>,
}

impl Version {
    pub fn new(levels_max: u32, tables: Vec<Arc<TableHandle>>) -> Self {
        let mut levels = vec![Vec::new(); levels_max as usize];
        for table in tables {
            let level = (table.meta.level as usize).min(levels.len().saturating_sub(1));
            levels[level].push(table);
        }
        if let Some(l0) = levels.first_mut() {
            l0.sort_by_key(|t| std::cmp::Reverse(t.meta.table_id));
        }
        for level in levels.iter_mut().skip(1) {
            level.sort_by(|a, b| a.meta.smallest_key.cmp(&b.meta.smallest_key));
        }
        Self { levels }
    }

    /// The version with `removed` tables dropped and `added` ones placed by their level.
    pub fn edit(&self, removed: &HashSet<u64>, added: Vec<Arc<TableHandle>>) -> Self {
        let tables = self
            .all()
            .filter(|t| !removed.contains(&t.meta.table_id))
            .cloned()
            .chain(added)
            .collect();
        Self::new(self.levels.len() as u32, tables)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<TableHandle>> {
        self.levels.iter().flatten()
    }

    pub fn metas(&self) -> Vec<TableMeta> {
        self.all().map(|t| t.meta.clone()).collect()
    }

    pub fn level_size_bytes(&self, level: usize) -> u64 {
        self.levels
            .get(level)
            .map_or(0, |l| l.iter().map(|t| t.meta.size_bytes).sum())
    }

    /// Tables of `level` whose range meets `[smallest, largest]`.
    pub fn overlapping(
        &self,
        level: usize,
        smallest: &[u8],
        largest: &[u8],
    ) -> Vec<Arc<TableHandle>> {
        self.levels.get(level).map_or_else(Vec::new, |tables| {
            tables
                .iter()
                .filter(|t| t.meta.overlaps(smallest, largest))
                .cloned()
                .collect()
        })
    }

    /// Newest entry for `key` across the tables, if any table has one.
    pub fn get(&self, key: &[u8]) -> Result<Option<Found>> {
        for (level, tables) in self.levels.iter().enumerate() {
            let candidates: &[Arc<TableHandle>] = if level == 0 {
                tables
            } else {
                // Disjoint and sorted: the one table whose largest key is >= key.
                let i = tables.partition_point(|t| t.meta.largest_key.as_slice() < key);
                match tables.get(i) {
                    Some(_) => &tables[i..i + 1],
                    None => &[],
                }
            };
            for table in candidates {
                if !table.meta.overlaps(key, key) {
                    continue;
                }
                match table.reader.get(key)? {
                    Lookup::Absent => {}
                    Lookup::Deleted => return Ok(Some(Found::Deleted)),
                    Lookup::Value(v) => return Ok(Some(Found::Value(v))),
                }
            }
        }
        Ok(None)
    }
}

//! Tombstone-density compaction (RocksDB: deletion-triggered compaction). When no level
//! is due by size, a table whose entries are mostly tombstones is compacted toward the
//! bottom, where its tombstones and the older values they shadow are dropped. Without
//! it, the tombstones of a mass delete sit in levels below their size targets forever,
//! and the deleted values beneath them are never reclaimed.
//!
//! Convergence: each plan chosen here takes the dense table's tombstones (at least
//! `tombstone_compaction_tombstones_min`, which is ≥ 1) either one level deeper or out
//! of existence, and no compaction moves a tombstone up or copies it (a merge keeps one
//! entry per key). So the sum over all tombstones of `levels − level` falls with every
//! such plan, and without new writes the picker runs dry: maintenance cannot loop.

use std::cmp::Ordering;
use std::sync::Arc;

use super::leveled::{plan, Plan};
use crate::storage::lsm::meta::TableMeta;
use crate::storage::lsm::options::LsmOptions;
use crate::storage::lsm::version::{TableHandle, Version};

/// A compaction for the densest table, if any table is dense enough (see
/// [`is_dense`]). Scans every table's metadata: no I/O.
pub fn pick(version: &Version, options: &LsmOptions) -> Option<Plan> {
    if version.levels.len() < 2 {
        return None;
    }
    let (level, table) = densest(version, options)?;
    if level == 0 {
        // L0 tables overlap one another, so only all of L0 leaves it together (as in
        // the count-triggered L0 compaction); newer L0 tables must win over older.
        let upper = version.levels.first()?.clone();
        return Some(plan(version, 0, upper));
    }
    let (smallest, largest) = (&table.meta.smallest_key, &table.meta.largest_key);
    let nothing_below = (level + 1..version.levels.len())
        .all(|deeper| version.overlapping(deeper, smallest, largest).is_empty());
    if nothing_below {
        // The last level, or a table a trivial move put above empty ground: its
        // tombstones shadow nothing, so rewriting it alone drops them all.
        return Some(Plan::rewrite(level, table));
    }
    // Merge into the next level: values there that the tombstones shadow are dropped,
    // the tombstones move one level down (or are dropped if nothing lies deeper still).
    Some(plan(version, level, vec![table]))
}

/// Whether `meta`'s tombstones make it due: at least the minimum count, and at least
/// `tombstone_compaction_ratio` of its entries.
pub fn is_dense(meta: &TableMeta, options: &LsmOptions) -> bool {
    meta.tombstone_count >= options.tombstone_compaction_tombstones_min
        && meta.tombstone_count as f64
            >= options.tombstone_compaction_ratio * meta.entry_count as f64
}

/// The dense table with the highest tombstone share; ties go to more tombstones, then
/// the shallower level, then the lower table id, so the choice is deterministic.
fn densest(version: &Version, options: &LsmOptions) -> Option<(usize, Arc<TableHandle>)> {
    version
        .levels
        .iter()
        .enumerate()
        .flat_map(|(level, tables)| tables.iter().map(move |t| (level, t)))
        .filter(|(_, t)| is_dense(&t.meta, options))
        .max_by(|(la, a), (lb, b)| {
            share_cmp(&a.meta, &b.meta)
                .then(a.meta.tombstone_count.cmp(&b.meta.tombstone_count))
                .then(lb.cmp(la))
                .then(b.meta.table_id.cmp(&a.meta.table_id))
        })
        .map(|(level, t)| (level, t.clone()))
}

/// Compares tombstone shares `ta / ea` and `tb / eb` exactly, by cross-multiplying.
fn share_cmp(a: &TableMeta, b: &TableMeta) -> Ordering {
    let left = u128::from(a.tombstone_count) * u128::from(b.entry_count.max(1));
    let right = u128::from(b.tombstone_count) * u128::from(a.entry_count.max(1));
    left.cmp(&right)
}

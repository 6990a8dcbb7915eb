use super::sstable::TableOptions;
use crate::storage::error::StorageError;

/// Tuning of the LSM engine. Every queue and buffer here has a bound.
#[derive(Debug, Clone)]
pub struct LsmOptions {
    /// A memtable this large is frozen and flushed to an L0 table.
    pub memtable_size_bytes_max: usize,
    /// Frozen memtables waiting for flush; a writer that would exceed this flushes one
    /// itself (backpressure instead of unbounded memory).
    pub immutable_memtables_max: usize,
    /// Log bytes buffered in memory before they are handed to the store without a
    /// sync. Unsynced writes in this buffer die with the process.
    pub log_buffer_bytes_max: usize,
    /// Largest group of batches one leader commits with a single sync.
    pub group_commit_bytes_max: usize,
    pub table: TableOptions,
    /// Compaction splits its output into tables of about this size.
    pub table_size_bytes_target: u64,
    /// L0 tables that make an L0→L1 compaction due.
    pub l0_compaction_trigger: usize,
    /// L0 tables at which writers stop to compact first.
    pub l0_stall_tables: usize,
    /// Target size of L1; each deeper level is `level_size_multiplier` times larger.
    pub level_base_size_bytes: u64,
    pub level_size_multiplier: u64,
    pub levels_max: u32,
    /// When no level is due by size, a table whose tombstones make up at least this
    /// share of its entries (and number at least `tombstone_compaction_tombstones_min`)
    /// is compacted toward the bottom, where its tombstones and the values they shadow
    /// are dropped. Without it, the tombstones of a mass delete can sit in levels below
    /// their size targets forever and the deleted bytes are never reclaimed. In `(0, 1]`.
    pub tombstone_compaction_ratio: f64,
    /// Fewer tombstones than this never make a table due by density: rewriting the next
    /// level's overlapping tables is not worth a handful of deleted keys. At least 1.
    pub tombstone_compaction_tombstones_min: u64,
    /// Decompressed data blocks kept in memory. A server default (redb's own default
    /// page cache is 1 GiB); hosts with little memory, such as a browser tab, set less.
    /// A miss costs a read, a CRC and a decode, about three times a hit.
    pub block_cache_capacity_bytes: u64,
    /// `false`: writes that fill the memtable flush and compact inline, to completion.
    /// `true`: the host calls [`crate::storage::Engine::maintain`] from its own thread
    /// (native) or between events in bounded steps (wasm); writes only help when the
    /// bounds above are reached.
    pub background_maintenance: bool,
}

impl Default for LsmOptions {
    fn default() -> Self {
        Self {
            memtable_size_bytes_max: 8 << 20,
            immutable_memtables_max: 2,
            log_buffer_bytes_max: 256 << 10,
            group_commit_bytes_max: 4 << 20,
            table: TableOptions::default(),
            table_size_bytes_target: 8 << 20,
            l0_compaction_trigger: 4,
            l0_stall_tables: 12,
            level_base_size_bytes: 64 << 20,
            level_size_multiplier: 10,
            levels_max: 7,
            tombstone_compaction_ratio: 0.5,
            tombstone_compaction_tombstones_min: 32,
            block_cache_capacity_bytes: 256 << 20,
            background_maintenance: false,
        }
    }
}

impl LsmOptions {
    /// Small sizes that make flushes and compactions happen within a few hundred
    /// writes, so tests exercise every path.
    pub fn tiny() -> Self {
        Self {
            memtable_size_bytes_max: 4 << 10,
            log_buffer_bytes_max: 1 << 10,
            group_commit_bytes_max: 16 << 10,
            table: TableOptions {
                block_size_bytes: 256,
                ..TableOptions::default()
            },
            table_size_bytes_target: 4 << 10,
            l0_compaction_trigger: 3,
            l0_stall_tables: 6,
            level_base_size_bytes: 16 << 10,
            level_size_multiplier: 4,
            levels_max: 5,
            block_cache_capacity_bytes: 64 << 10,
            ..Self::default()
        }
    }

    /// Rejects settings under which the engine could not make progress or keep its
    /// invariants (e.g. no frozen memtable allowed would stall every writer).
    pub fn validate(&self) -> Result<(), StorageError> {
        let checks = [
            (
                self.memtable_size_bytes_max > 0,
                "memtable_size_bytes_max must be positive",
            ),
            (
                self.immutable_memtables_max >= 1,
                "immutable_memtables_max must be at least 1",
            ),
            (
                self.group_commit_bytes_max > 0,
                "group_commit_bytes_max must be positive",
            ),
            (
                self.table_size_bytes_target > 0,
                "table_size_bytes_target must be positive",
            ),
            (
                self.l0_compaction_trigger >= 1,
                "l0_compaction_trigger must be at least 1",
            ),
            (
                self.l0_stall_tables > self.l0_compaction_trigger,
                "l0_stall_tables must exceed l0_compaction_trigger",
            ),
            (
                self.level_base_size_bytes > 0,
                "level_base_size_bytes must be positive",
            ),
            (
                self.level_size_multiplier >= 2,
                "level_size_multiplier must be at least 2",
            ),
            (
                (2..=16).contains(&self.levels_max),
                "levels_max must be 2..=16",
            ),
            (
                self.tombstone_compaction_ratio > 0.0 && self.tombstone_compaction_ratio <= 1.0,
                "tombstone_compaction_ratio must be in (0, 1]",
            ),
            (
                // A table with no tombstones must never be due: rewriting it changes
                // nothing, and maintenance would pick it again forever.
                self.tombstone_compaction_tombstones_min >= 1,
                "tombstone_compaction_tombstones_min must be at least 1",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, reason)) => Err(StorageError::InvalidOptions((*reason).to_string())),
            None => Ok(()),
        }
    }

    pub(crate) fn level_target_bytes(&self, level: u32) -> u64 {
        let mut target = self.level_base_size_bytes;
        for _ in 1..level {
            target = target.saturating_mul(self.level_size_multiplier);
        }
        target
    }
}

//! Single-node storage: the [`Engine`] trait, its two engines (our LSM and redb), and the
//! [`BlockStore`] they persist through.

pub mod batch;
pub mod blockstore;
pub mod error;
pub mod lsm;
pub mod redb_engine;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::ops::Bound;

pub use batch::{BatchOp, WriteBatch};
pub use blockstore::{BlockFile, BlockStore};
pub use error::{Result, StorageError};

/// Largest key an engine accepts. The cluster layer sets tighter limits for clients.
pub const KEY_SIZE_BYTES_MAX: usize = 64 * 1024;
/// Largest value an engine accepts.
pub const VALUE_SIZE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Largest encoded batch an engine accepts in one write.
pub const BATCH_SIZE_BYTES_MAX: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// Return only once the batch is durable in the block store. Concurrent durable
    /// writers share one sync (group commit).
    pub sync: bool,
}

impl WriteOptions {
    pub const DURABLE: WriteOptions = WriteOptions { sync: true };
    pub const BUFFERED: WriteOptions = WriteOptions { sync: false };
}

/// Log sequence number of a committed batch: batches apply in LSN order, and a store
/// image that holds batch `n` holds every batch before it. LSNs are unique among the
/// batches that survive: a buffered (`sync: false`) batch lost in a crash may see its
/// LSN issued again after recovery, so a host that tracks durability by LSN must only
/// compare LSNs within one open of the engine.
pub type Lsn = u64;

/// Counters an engine reports. Sizes are bytes in the block store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineStats {
    /// Bytes of keys and values handed to `write` since open.
    pub user_bytes_written: u64,
    /// Bytes the engine wrote to its store since open (log, tables, manifest).
    pub store_bytes_written: u64,
    /// Bytes the engine's files occupy now.
    pub space_used_bytes: u64,
    /// Live entries, approximate (tables count shadowed versions and tombstones).
    pub entries_approx: u64,
    pub tables: u64,
    pub levels: Vec<u64>,
    pub flushes: u64,
    pub compactions: u64,
    pub syncs: u64,
    pub block_cache_bytes: u64,
    /// Entries in memory not yet in the long-lived form (the LSM's active and frozen
    /// memtables; 0 for engines without one): what [`Engine::flush`] would move.
    pub unflushed_entries: u64,
}

impl EngineStats {
    /// Store bytes written per user byte written.
    pub fn write_amplification(&self) -> f64 {
        if self.user_bytes_written == 0 {
            return 0.0;
        }
        self.store_bytes_written as f64 / self.user_bytes_written as f64
    }
}

/// A key-value engine: ordered byte keys, byte values, atomic batches.
///
/// All methods take `&self`: engines lock internally so a native host may call them
/// from many threads (e.g. concurrent durable writers sharing one sync).
pub trait Engine: Send + Sync {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Applies every operation of `batch` or none of them (also across crashes).
    fn write(&self, batch: &WriteBatch, options: WriteOptions) -> Result<Lsn>;

    /// Up to `limit` entries with keys in `(start, end)`, in ascending byte order of
    /// keys. The order is total and stable, so a caller can page with
    /// `Bound::Excluded(last_key)` (anti-entropy walks ranges this way).
    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;

    /// Makes every write so far durable and moves buffered data into its long-lived
    /// form (the LSM flushes its memtable).
    fn flush(&self) -> Result<()>;

    /// Runs background work (flushes, compactions) until none is due. Hosts with
    /// threads call it from their own; single-threaded hosts call [`Engine::maintain`].
    fn compact(&self) -> Result<()>;

    /// Does at most about `budget_bytes` of background work; returns whether more is due.
    fn maintain(&self, budget_bytes: u64) -> Result<bool>;

    fn stats(&self) -> EngineStats;

    /// Keys with `prefix`, up to `limit`.
    fn scan_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let end = prefix_successor(prefix);
        let end_bound = match &end {
            Some(e) => Bound::Excluded(e.as_slice()),
            None => Bound::Unbounded,
        };
        self.scan(Bound::Included(prefix), end_bound, limit)
    }
}

/// The smallest key greater than every key starting with `prefix`, if any.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

//! Sorted string tables: the LSM's immutable on-disk runs.
//!
//! A table is written once, front to back, by [`TableWriter`] and then only read, by a
//! [`TableReader`] that keeps its index and bloom filter in memory and loads data blocks
//! through the shared [`BlockCache`](super::cache::BlockCache). The byte format is
//! specified in `docs/format/sstable.md`; every length and offset read from a file is
//! checked, so damaged or hostile bytes give `StorageError::Corruption`, never a panic.

pub(crate) mod block;
mod bloom;
mod coding;
mod footer;
mod frame;
mod hash;
mod index;
mod iter;
mod properties;
mod reader;
mod writer;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;

pub use iter::TableIter;
pub use reader::TableReader;
pub use writer::TableWriter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOptions {
    /// Decoded size at which a data block is closed (before compression). Clamped to
    /// 64 B..=16 MiB, which keeps every block under the reader's 64 MiB bound even with
    /// one maximum-size entry on top.
    pub block_size_bytes: usize,
    /// Bloom filter bits per key; 10 gives about 1% false positives, 0 disables the filter.
    pub bloom_bits_per_key: u32,
    /// lz4-compress blocks and the index where it saves at least an eighth.
    pub compress: bool,
}

impl Default for TableOptions {
    fn default() -> Self {
        Self {
            block_size_bytes: 4096,
            bloom_bits_per_key: 10,
            compress: true,
        }
    }
}

/// What a table says about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The table has no entry for the key; older tables decide.
    Absent,
    /// The table holds a tombstone: the key is deleted, whatever older tables say.
    Deleted,
    Value(Vec<u8>),
}

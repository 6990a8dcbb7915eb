use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

use super::block::{Block, BlockCursor, SeekMode};
use super::bloom::Bloom;
use super::coding::Malformed;
use super::footer::{Footer, FOOTER_SIZE_BYTES};
use super::frame::{self, Section};
use super::index::Index;
use super::iter::TableIter;
use super::properties::Properties;
use super::Lookup;
use crate::storage::blockstore::BlockFile;
use crate::storage::error::{Result, StorageError};
use crate::storage::lsm::cache::BlockCache;

/// An open table. Holds the index and bloom filter in memory; data blocks are read on
/// demand through the shared cache. Immutable, so `Arc<TableReader>` is shared freely
/// across threads.
pub struct TableReader {
    file: Arc<dyn BlockFile>,
    table_id: u64,
    cache: Arc<BlockCache>,
    index: Index,
    bloom: Bloom,
}

impl TableReader {
    /// Reads and verifies the footer, properties, index and bloom filter. A table whose
    /// recorded id differs from `table_id` is reported as corruption (a misplaced file).
    pub fn open(file: Arc<dyn BlockFile>, table_id: u64, cache: Arc<BlockCache>) -> Result<Self> {
        let name = file.name().to_string();
        let file_len = file.len()?;
        let footer_offset = file_len
            .checked_sub(FOOTER_SIZE_BYTES as u64)
            .ok_or_else(|| {
                StorageError::corruption(
                    &name,
                    0,
                    format!("{file_len} bytes is too short for a table"),
                )
            })?;
        let mut footer_bytes = [0u8; FOOTER_SIZE_BYTES];
        file.read_at(footer_offset, &mut footer_bytes)?;
        let footer = Footer::decode(&footer_bytes, &name, footer_offset)?;

        let properties = read_section(&*file, footer.properties, "properties").and_then(|c| {
            decoded(
                Properties::decode(&c),
                &name,
                footer.properties,
                "properties",
            )
        })?;
        if properties.table_id != table_id {
            return Err(StorageError::corruption(
                &name,
                footer.properties.offset,
                format!("table id is {}, expected {table_id}", properties.table_id),
            ));
        }
        let index = read_section(&*file, footer.index, "index").and_then(|c| {
            decoded(
                Index::decode(&c, footer.index.offset),
                &name,
                footer.index,
                "index",
            )
        })?;
        let bloom = read_section(&*file, footer.bloom, "bloom filter")
            .and_then(|c| decoded(Bloom::decode(c), &name, footer.bloom, "bloom filter"))?;

        let consistent = match index.last() {
            None => properties.entry_count == 0,
            Some(last) => properties.entry_count > 0 && last.last_key == properties.largest_key,
        };
        if !consistent {
            return Err(StorageError::corruption(
                &name,
                footer.properties.offset,
                "properties disagree with the index",
            ));
        }
        Ok(Self {
            file,
            table_id,
            cache,
            index,
            bloom,
        })
    }

    pub fn table_id(&self) -> u64 {
        self.table_id
    }

    /// Bloom filter first, then the index, then at most one data block.
    pub fn get(&self, key: &[u8]) -> Result<Lookup> {
        if !self.bloom.may_contain(key) {
            return Ok(Lookup::Absent);
        }
        let block = self.index.find(key, SeekMode::AtOrAfter);
        if block >= self.index.len() {
            return Ok(Lookup::Absent);
        }
        let mut cursor = BlockCursor::new(self.load_block(block)?);
        let found = cursor
            .seek(key, SeekMode::AtOrAfter)
            .map_err(|m| self.block_corruption(block, m))?;
        if !found || cursor.key() != key {
            return Ok(Lookup::Absent);
        }
        Ok(match cursor.value() {
            Some(value) => Lookup::Value(value.to_vec()),
            None => Lookup::Deleted,
        })
    }

    /// False means the table certainly has no entry (value or tombstone) for `key`.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.bloom.may_contain(key)
    }

    /// Entries in key order from `start`, tombstones included (value `None`).
    pub fn iter(self: &Arc<Self>, start: Bound<Vec<u8>>) -> TableIter {
        TableIter::new(Arc::clone(self), start)
    }

    pub(crate) fn index(&self) -> &Index {
        &self.index
    }

    /// Data block `block` (an index position), from the cache or the file.
    pub(crate) fn load_block(&self, block: usize) -> Result<Arc<Block>> {
        let section = self
            .index
            .get(block)
            .ok_or_else(|| {
                StorageError::corruption(self.file.name(), 0, "block index out of range")
            })?
            .block;
        if let Some(cached) = self.cache.get(self.table_id, section.offset) {
            return Ok(cached);
        }
        let contents = read_section(&*self.file, section, "data block")?;
        let decoded = Block::decode(contents).map_err(|m| self.block_corruption(block, m))?;
        let decoded = Arc::new(decoded);
        self.cache
            .insert(self.table_id, section.offset, Arc::clone(&decoded));
        Ok(decoded)
    }

    pub(crate) fn block_corruption(&self, block: usize, malformed: Malformed) -> StorageError {
        let offset = self.index.get(block).map_or(0, |e| e.block.offset);
        malformed.at(self.file.name(), offset, "data block")
    }
}

/// Reads a section and strips its framing (CRC check, decompression). The footer and
/// index were validated against the file's length, so the allocation is bounded by it.
fn read_section(file: &dyn BlockFile, section: Section, what: &str) -> Result<Vec<u8>> {
    let size_bytes = usize::try_from(section.size_bytes).map_err(|_| {
        StorageError::corruption(file.name(), section.offset, format!("{what}: too large"))
    })?;
    let mut stored = vec![0u8; size_bytes];
    file.read_at(section.offset, &mut stored)?;
    frame::decode(stored).map_err(|m| m.at(file.name(), section.offset, what))
}

fn decoded<T>(result: Result<T, Malformed>, file: &str, section: Section, what: &str) -> Result<T> {
    result.map_err(|m| m.at(file, section.offset, what))
}

impl fmt::Debug for TableReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableReader")
            .field("file", &self.file.name())
            .field("table_id", &self.table_id)
            .field("blocks", &self.index.len())
            .field("bloom_bytes", &self.bloom.size_bytes())
            .finish()
    }
}

use std::sync::Arc;

use super::block::BlockEncoder;
use super::footer::Footer;
use super::frame::Section;
use super::hash::hash64;
use super::index::{Index, IndexEntry};
use super::properties::Properties;
use super::{bloom, frame, TableOptions};
use crate::storage::batch::check_size;
use crate::storage::blockstore::BlockFile;
use crate::storage::error::{Result, StorageError};
use crate::storage::lsm::meta::TableMeta;
use crate::storage::{KEY_SIZE_BYTES_MAX, VALUE_SIZE_BYTES_MAX};

const BLOCK_SIZE_BYTES_MIN: usize = 64;
const BLOCK_SIZE_BYTES_MAX: usize = 16 << 20;

/// Writes one table front to back into a fresh, empty file.
///
/// A writer with no entries still finishes into a valid empty table (no data blocks;
/// `get` finds nothing, iteration yields nothing); its meta has empty smallest/largest
/// keys, so callers should drop rather than register it.
///
/// After any failed append the writer refuses further work: the file's tail is unknown.
#[derive(Debug)]
pub struct TableWriter {
    file: Arc<dyn BlockFile>,
    options: TableOptions,
    block: BlockEncoder,
    index: Vec<IndexEntry>,
    /// Hashes rather than keys: 8 bytes per key is all the bloom filter needs.
    key_hashes: Vec<u64>,
    written_bytes: u64,
    properties: Properties,
    failed: bool,
}

impl TableWriter {
    pub fn new(file: Arc<dyn BlockFile>, table_id: u64, options: &TableOptions) -> Self {
        let options = TableOptions {
            block_size_bytes: options
                .block_size_bytes
                .clamp(BLOCK_SIZE_BYTES_MIN, BLOCK_SIZE_BYTES_MAX),
            ..*options
        };
        Self {
            file,
            options,
            block: BlockEncoder::default(),
            index: Vec::new(),
            key_hashes: Vec::new(),
            written_bytes: 0,
            properties: Properties {
                table_id,
                ..Properties::default()
            },
            failed: false,
        }
    }

    /// Keys must be strictly increasing; `value` `None` is a tombstone. A key out of
    /// order is an `Io` error of kind `InvalidInput` and leaves the writer usable.
    pub fn add(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        self.check_usable()?;
        check_size("key", key.len(), KEY_SIZE_BYTES_MAX)?;
        check_size("value", value.map_or(0, <[u8]>::len), VALUE_SIZE_BYTES_MAX)?;
        if self.properties.entry_count > 0 && key <= self.properties.largest_key.as_slice() {
            return Err(self.invalid_input("keys must be added in strictly increasing order"));
        }
        let properties = &mut self.properties;
        if properties.entry_count == 0 {
            properties.smallest_key = key.to_vec();
        }
        properties.largest_key.clear();
        properties.largest_key.extend_from_slice(key);
        properties.entry_count += 1;
        properties.tombstone_count += u64::from(value.is_none());
        self.block.add(key, value);
        self.key_hashes.push(hash64(key));
        if self.block.size_bytes() >= self.options.block_size_bytes {
            self.flush_block()?;
        }
        Ok(())
    }

    /// Bytes written so far plus the pending block's decoded size.
    pub fn size_estimate_bytes(&self) -> u64 {
        let pending_bytes = if self.block.is_empty() {
            0
        } else {
            self.block.size_bytes()
        };
        self.written_bytes + pending_bytes as u64
    }

    pub fn entry_count(&self) -> u64 {
        self.properties.entry_count
    }

    /// Writes the last block, index, bloom filter, properties and footer, then syncs.
    pub fn finish(mut self) -> Result<TableMeta> {
        self.check_usable()?;
        if !self.block.is_empty() {
            self.flush_block()?;
        }
        let index = self.append_section(&Index::encode(&self.index), self.options.compress)?;
        let bloom_contents = bloom::build(&self.key_hashes, self.options.bloom_bits_per_key);
        let bloom = self.append_section(&bloom_contents, false)?;
        let properties = self.append_section(&self.properties.encode(), false)?;
        let footer = Footer {
            index,
            bloom,
            properties,
        };
        self.append(&footer.encode())?;
        // Offsets assume the table starts at byte 0 of a file only this writer appends to.
        if self.file.len()? != self.written_bytes {
            return Err(
                self.invalid_input("file was not empty or was appended to by another writer")
            );
        }
        self.file.sync()?;
        let properties = self.properties;
        Ok(TableMeta {
            table_id: properties.table_id,
            level: 0,
            size_bytes: self.written_bytes,
            entry_count: properties.entry_count,
            tombstone_count: properties.tombstone_count,
            smallest_key: properties.smallest_key,
            largest_key: properties.largest_key,
        })
    }

    fn flush_block(&mut self) -> Result<()> {
        let contents = self.block.finish();
        let block = self.append_section(&contents, self.options.compress)?;
        self.index.push(IndexEntry {
            last_key: self.properties.largest_key.clone(),
            block,
        });
        Ok(())
    }

    fn append_section(&mut self, contents: &[u8], compress: bool) -> Result<Section> {
        let stored = frame::encode(contents, compress);
        let offset = self.append(&stored)?;
        Ok(Section {
            offset,
            size_bytes: stored.len() as u64,
        })
    }

    /// Appends and returns the offset the bytes start at.
    fn append(&mut self, bytes: &[u8]) -> Result<u64> {
        if let Err(e) = self.file.append(bytes) {
            self.failed = true;
            return Err(e);
        }
        let offset = self.written_bytes;
        self.written_bytes += bytes.len() as u64;
        Ok(offset)
    }

    fn check_usable(&self) -> Result<()> {
        if self.failed {
            return Err(StorageError::Failed {
                cause: format!("an earlier append to {} failed", self.file.name()),
            });
        }
        Ok(())
    }

    fn invalid_input(&self, reason: &str) -> StorageError {
        StorageError::io(
            self.file.name(),
            std::io::Error::new(std::io::ErrorKind::InvalidInput, reason.to_string()),
        )
    }
}

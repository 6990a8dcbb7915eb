use std::ops::Bound;
use std::sync::Arc;

use super::block::{BlockCursor, SeekMode};
use super::coding::Malformed;
use super::reader::TableReader;
use crate::storage::error::{Result, StorageError};

/// A key and its value, `None` for a tombstone.
type Entry = (Vec<u8>, Option<Vec<u8>>);

/// Entries of one table in key order, from a start bound. Owns its reader, so it may
/// outlive the caller's handle and move across threads; loads blocks lazily through the
/// cache. After an error it yields nothing more.
#[derive(Debug)]
pub struct TableIter {
    table: Arc<TableReader>,
    /// Taken on the first `next`, so creating an iterator does no IO.
    start: Option<Bound<Vec<u8>>>,
    block: usize,
    cursor: Option<BlockCursor>,
    /// The cursor sits on an entry that a seek found and `next` has not yielded yet.
    pending: bool,
    /// The cursor just moved to a new block by reading on, so its first key is checked.
    check_start: bool,
    done: bool,
}

impl TableIter {
    pub(crate) fn new(table: Arc<TableReader>, start: Bound<Vec<u8>>) -> Self {
        Self {
            table,
            start: Some(start),
            block: 0,
            cursor: None,
            pending: false,
            check_start: false,
            done: false,
        }
    }

    fn step(&mut self) -> Result<Option<Entry>> {
        if let Some(start) = self.start.take() {
            self.seek(start)?;
        }
        loop {
            let block = self.block;
            let Some(cursor) = self.cursor.as_mut() else {
                return Ok(None);
            };
            if std::mem::take(&mut self.pending) {
                return Ok(Some(entry(cursor)));
            }
            let advanced = cursor
                .advance()
                .map_err(|m| self.table.block_corruption(block, m))?;
            if advanced {
                if std::mem::take(&mut self.check_start) {
                    self.check_block_start(block)?;
                }
                return Ok(self.cursor.as_ref().map(entry));
            }
            self.check_block_end(block)?;
            self.open_block(block + 1)?;
            self.check_start = true;
        }
    }

    fn seek(&mut self, start: Bound<Vec<u8>>) -> Result<()> {
        let (target, mode) = match start {
            Bound::Unbounded => return self.open_block(0),
            Bound::Included(key) => (key, SeekMode::AtOrAfter),
            Bound::Excluded(key) => (key, SeekMode::After),
        };
        let block = self.table.index().find(&target, mode);
        self.open_block(block)?;
        if let Some(cursor) = self.cursor.as_mut() {
            // The index promises this block holds a key at or after the target; if it
            // does not, the block-end check reports the inconsistency on the next step.
            self.pending = cursor
                .seek(&target, mode)
                .map_err(|m| self.table.block_corruption(block, m))?;
        }
        Ok(())
    }

    /// Positions before the first entry of `block`, or at the end past the last block.
    fn open_block(&mut self, block: usize) -> Result<()> {
        self.block = block;
        self.cursor = None;
        if block < self.table.index().len() {
            self.cursor = Some(BlockCursor::new(self.table.load_block(block)?));
        }
        Ok(())
    }

    /// With [`Self::check_block_start`], proves that blocks read one after another
    /// continue the key order (the index's keys were checked to increase at open).
    fn check_block_end(&self, block: usize) -> Result<()> {
        let expected = self.table.index().get(block).map(|e| e.last_key);
        if expected != self.cursor.as_ref().map(BlockCursor::key) {
            return Err(self.corruption(block, "last key differs from the index"));
        }
        Ok(())
    }

    /// The first key of `block` must come after the previous block's last key.
    fn check_block_start(&self, block: usize) -> Result<()> {
        let previous = block
            .checked_sub(1)
            .and_then(|b| self.table.index().get(b))
            .map(|e| e.last_key);
        let first = self.cursor.as_ref().map(BlockCursor::key);
        if previous.is_some_and(|previous| first.is_none_or(|first| first <= previous)) {
            return Err(self.corruption(block, "first key not after the previous block's"));
        }
        Ok(())
    }

    fn corruption(&self, block: usize, reason: &'static str) -> StorageError {
        self.table
            .block_corruption(block, Malformed { reason, pos: 0 })
    }
}

fn entry(cursor: &BlockCursor) -> Entry {
    (cursor.key().to_vec(), cursor.value().map(<[u8]>::to_vec))
}

impl Iterator for TableIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.step();
        if !matches!(item, Ok(Some(_))) {
            self.done = true;
        }
        item.transpose()
    }
}

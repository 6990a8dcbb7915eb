//! The block index: for each data block in file order, its last key and where it is
//! stored. Kept in memory by the reader; a lookup binary-searches it for the one block
//! that can hold a key.
//!
//! Contents: `block_count: varint`, then per block `last_key_len: varint ‖ last_key ‖
//! offset: varint ‖ size: varint` (size of the stored, framed block).

use super::block::SeekMode;
use super::coding::{put_varint, ByteReader, Decoded};
use super::frame::{Section, TRAILER_SIZE_BYTES};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub(crate) last_key: Vec<u8>,
    pub(crate) block: Section,
}

/// Smallest encoding of one entry: three one-byte varints (empty key).
const ENTRY_SIZE_BYTES_MIN: usize = 3;

/// A decoded entry, borrowing its key from the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexRef<'a> {
    pub(crate) last_key: &'a [u8],
    pub(crate) block: Section,
}

/// Decoded index. Keys sit back to back in one buffer so a lookup's binary search
/// touches two small arrays instead of one heap allocation per step (the search runs on
/// every point read that passes the bloom filter).
#[derive(Debug, Default)]
pub(crate) struct Index {
    keys: Vec<u8>,
    /// `key_ends[i]`: end of block `i`'s last key in `keys`.
    key_ends: Vec<usize>,
    blocks: Vec<Section>,
}

impl Index {
    pub(crate) fn encode(entries: &[IndexEntry]) -> Vec<u8> {
        let mut buf = Vec::new();
        put_varint(&mut buf, entries.len() as u64);
        for entry in entries {
            put_varint(&mut buf, entry.last_key.len() as u64);
            buf.extend_from_slice(&entry.last_key);
            put_varint(&mut buf, entry.block.offset);
            put_varint(&mut buf, entry.block.size_bytes);
        }
        buf
    }

    /// Decodes and validates: blocks tile `[0, data_end)` exactly, in order, each at
    /// least a trailer long, and last keys strictly increase (so binary search is sound).
    pub(crate) fn decode(contents: &[u8], data_end: u64) -> Decoded<Self> {
        let mut reader = ByteReader::new(contents);
        let count = reader.varint_usize()?;
        // The count is untrusted: reserve no more than the bytes could possibly hold.
        let capacity = count.min(reader.remaining() / ENTRY_SIZE_BYTES_MIN);
        let mut index = Index {
            keys: Vec::with_capacity(reader.remaining()),
            key_ends: Vec::with_capacity(capacity),
            blocks: Vec::with_capacity(capacity),
        };
        let mut expected_offset = 0u64;
        for _ in 0..count {
            let last_key = reader.length_prefixed()?;
            let offset = reader.varint()?;
            let size_bytes = reader.varint()?;
            if offset != expected_offset || size_bytes < TRAILER_SIZE_BYTES as u64 {
                return Err(reader.malformed("blocks do not tile the data area"));
            }
            expected_offset = offset
                .checked_add(size_bytes)
                .filter(|&end| end <= data_end)
                .ok_or_else(|| reader.malformed("block runs past the data area"))?;
            if index
                .last()
                .is_some_and(|previous| previous.last_key >= last_key)
            {
                return Err(reader.malformed("last keys out of order"));
            }
            index.keys.extend_from_slice(last_key);
            index.key_ends.push(index.keys.len());
            index.blocks.push(Section { offset, size_bytes });
        }
        reader.expect_end()?;
        if expected_offset != data_end {
            return Err(reader.malformed("blocks do not tile the data area"));
        }
        Ok(index)
    }

    pub(crate) fn len(&self) -> usize {
        self.blocks.len()
    }

    fn key(&self, block: usize) -> &[u8] {
        let start = block
            .checked_sub(1)
            .and_then(|b| self.key_ends.get(b))
            .copied()
            .unwrap_or(0);
        let end = self.key_ends.get(block).copied().unwrap_or(start);
        self.keys.get(start..end).unwrap_or_default()
    }

    pub(crate) fn get(&self, block: usize) -> Option<IndexRef<'_>> {
        Some(IndexRef {
            last_key: self.key(block),
            block: *self.blocks.get(block)?,
        })
    }

    pub(crate) fn last(&self) -> Option<IndexRef<'_>> {
        self.get(self.len().checked_sub(1)?)
    }

    /// The first block that can hold a key at or after `target` (per `mode`); `len()`
    /// if every key is before it.
    pub(crate) fn find(&self, target: &[u8], mode: SeekMode) -> usize {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = low + (high - low) / 2;
            if mode.is_before(self.key(mid), target) {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &[u8], offset: u64, size_bytes: u64) -> IndexEntry {
        IndexEntry {
            last_key: key.to_vec(),
            block: Section { offset, size_bytes },
        }
    }

    #[test]
    fn round_trips_and_finds() {
        let entries = vec![entry(b"b", 0, 10), entry(b"d", 10, 20), entry(b"f", 30, 5)];
        let index = Index::decode(&Index::encode(&entries), 35).expect("valid");
        let decoded: Vec<IndexEntry> = (0..index.len())
            .filter_map(|i| index.get(i))
            .map(|e| entry(e.last_key, e.block.offset, e.block.size_bytes))
            .collect();
        assert_eq!(decoded, entries);
        assert_eq!(index.find(b"a", SeekMode::AtOrAfter), 0);
        assert_eq!(index.find(b"b", SeekMode::AtOrAfter), 0);
        assert_eq!(index.find(b"b", SeekMode::After), 1);
        assert_eq!(index.find(b"e", SeekMode::AtOrAfter), 2);
        assert_eq!(index.find(b"g", SeekMode::AtOrAfter), 3);
    }

    #[test]
    fn rejects_gaps_overlaps_and_disorder() {
        let cases = [
            (vec![entry(b"b", 0, 10), entry(b"d", 11, 20)], 31),
            (vec![entry(b"b", 0, 10), entry(b"d", 9, 20)], 29),
            (vec![entry(b"d", 0, 10), entry(b"b", 10, 20)], 30),
            (vec![entry(b"b", 0, 10)], 11),
            (vec![entry(b"b", 0, 10)], 9),
            (vec![entry(b"b", 0, 2)], 2),
        ];
        for (entries, data_end) in cases {
            assert!(
                Index::decode(&Index::encode(&entries), data_end).is_err(),
                "{entries:?}"
            );
        }
        assert!(Index::decode(&[0xff, 0xff, 0xff, 0x7f], 0).is_err());
        assert!(Index::decode(&[0, 0], 0).is_err());
    }
}

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

#[derive(Debug, Default)]
pub(crate) struct Index {
    entries: Vec<IndexEntry>,
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
        let mut entries: Vec<IndexEntry> =
            Vec::with_capacity(count.min(reader.remaining() / ENTRY_SIZE_BYTES_MIN));
        let mut expected_offset = 0u64;
        for _ in 0..count {
            let last_key = reader.length_prefixed()?.to_vec();
            let offset = reader.varint()?;
            let size_bytes = reader.varint()?;
            if offset != expected_offset || size_bytes < TRAILER_SIZE_BYTES as u64 {
                return Err(reader.malformed("blocks do not tile the data area"));
            }
            expected_offset = offset
                .checked_add(size_bytes)
                .filter(|&end| end <= data_end)
                .ok_or_else(|| reader.malformed("block runs past the data area"))?;
            if entries
                .last()
                .is_some_and(|previous| previous.last_key >= last_key)
            {
                return Err(reader.malformed("last keys out of order"));
            }
            entries.push(IndexEntry {
                last_key,
                block: Section { offset, size_bytes },
            });
        }
        reader.expect_end()?;
        if expected_offset != data_end {
            return Err(reader.malformed("blocks do not tile the data area"));
        }
        Ok(Self { entries })
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn get(&self, block: usize) -> Option<&IndexEntry> {
        self.entries.get(block)
    }

    pub(crate) fn last(&self) -> Option<&IndexEntry> {
        self.entries.last()
    }

    /// The first block that can hold a key at or after `target` (per `mode`); `len()`
    /// if every key is before it.
    pub(crate) fn find(&self, target: &[u8], mode: SeekMode) -> usize {
        self.entries
            .partition_point(|entry| mode.is_before(&entry.last_key, target))
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
        assert_eq!(index.entries, entries);
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

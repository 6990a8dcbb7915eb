use std::ops::Range;

use crate::storage::lsm::sstable::coding::{ByteReader, Decoded, Malformed};

/// A decoded, validated data block, shared through the block cache.
///
/// Invariant (checked by [`Block::decode`]): at least one restart, the first at 0, all
/// strictly increasing and inside the entry area. Entries themselves are checked as
/// they are read, so a damaged entry is an error when reached, never a panic.
#[derive(Debug)]
pub(crate) struct Block {
    data: Vec<u8>,
    restarts_offset: usize,
    restart_count: usize,
}

/// One entry's fields, as positions in the entry area.
#[derive(Debug)]
pub(crate) struct RawEntry {
    pub(crate) shared: usize,
    pub(crate) key_suffix: Range<usize>,
    pub(crate) value: Option<Range<usize>>,
    pub(crate) next: usize,
}

/// Memory a cached block holds besides its bytes: a rough charge for the Arc, the
/// struct and the cache's bookkeeping, so tiny blocks are not free.
const OVERHEAD_BYTES: u64 = 96;

impl Block {
    pub(crate) fn decode(data: Vec<u8>) -> Decoded<Self> {
        let mut reader = ByteReader::at(&data, data.len().saturating_sub(4));
        let restart_count = reader.u32_le()? as usize;
        let restarts_size_bytes = restart_count
            .checked_mul(4)
            .and_then(|n| n.checked_add(4))
            .filter(|&n| n <= data.len())
            .ok_or_else(|| malformed("restart array larger than the block", data.len()))?;
        if restart_count == 0 {
            return Err(malformed("block has no restart points", data.len()));
        }
        let restarts_offset = data.len() - restarts_size_bytes;
        let block = Self {
            data,
            restarts_offset,
            restart_count,
        };
        let mut previous = None;
        for i in 0..restart_count {
            let offset = block.restart(i);
            let in_order = match previous {
                None => offset == 0,
                Some(p) => offset > p,
            };
            if !in_order || offset >= restarts_offset {
                return Err(malformed(
                    "restart offsets out of order or range",
                    restarts_offset + 4 * i,
                ));
            }
            previous = Some(offset);
        }
        Ok(block)
    }

    pub(crate) fn restart_count(&self) -> usize {
        self.restart_count
    }

    /// Offset of restart `i`. For `i < restart_count` the read is in range; past it the
    /// result is an offset no entry can start at, so parsing there fails cleanly.
    pub(crate) fn restart(&self, i: usize) -> usize {
        let at = self.restarts_offset + 4 * i;
        ByteReader::at(&self.data, at)
            .u32_le()
            .map_or(usize::MAX, |o| o as usize)
    }

    pub(crate) fn entries(&self) -> &[u8] {
        &self.data[..self.restarts_offset]
    }

    /// Bytes this block holds in the cache.
    pub(crate) fn charge_bytes(&self) -> u64 {
        self.data.capacity() as u64 + OVERHEAD_BYTES
    }

    /// Parses the entry starting at `pos` of the entry area.
    pub(crate) fn entry_at(&self, pos: usize) -> Decoded<RawEntry> {
        let mut reader = ByteReader::at(self.entries(), pos);
        let shared = reader.varint_usize()?;
        let unshared = reader.varint_usize()?;
        let value_tag = reader.varint()?;
        let key_start = reader.pos();
        reader.bytes(unshared)?;
        let key_suffix = key_start..reader.pos();
        let value = match value_tag.checked_sub(1) {
            None => None,
            Some(size_bytes) => {
                let size_bytes = usize::try_from(size_bytes)
                    .map_err(|_| reader.malformed("value length does not fit in memory"))?;
                let value_start = reader.pos();
                reader.bytes(size_bytes)?;
                Some(value_start..reader.pos())
            }
        };
        Ok(RawEntry {
            shared,
            key_suffix,
            value,
            next: reader.pos(),
        })
    }
}

fn malformed(reason: &'static str, pos: usize) -> Malformed {
    Malformed { reason, pos }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_restart_arrays() {
        assert!(Block::decode(Vec::new()).is_err());
        assert!(Block::decode(0u32.to_le_bytes().to_vec()).is_err());
        assert!(Block::decode(u32::MAX.to_le_bytes().to_vec()).is_err());
        // One restart at 0 but no entry area: the restart would point past the entries.
        let mut empty = 0u32.to_le_bytes().to_vec();
        empty.extend_from_slice(&1u32.to_le_bytes());
        assert!(Block::decode(empty).is_err());
    }
}

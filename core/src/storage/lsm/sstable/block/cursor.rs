use std::ops::Range;
use std::sync::Arc;

use super::Block;
use crate::storage::lsm::sstable::coding::{Decoded, Malformed};

/// Where a seek stops: at the first key `>= target` or the first key `> target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeekMode {
    AtOrAfter,
    After,
}

impl SeekMode {
    /// Whether `key` comes before where the seek stops.
    pub(crate) fn is_before(self, key: &[u8], target: &[u8]) -> bool {
        match self {
            SeekMode::AtOrAfter => key < target,
            SeekMode::After => key <= target,
        }
    }
}

/// A position in a block. Reconstructs each key from its prefix-compressed form and
/// checks that keys strictly increase, so a damaged block cannot yield keys out of order.
#[derive(Debug)]
pub(crate) struct BlockCursor {
    block: Arc<Block>,
    next_pos: usize,
    key: Vec<u8>,
    value: Option<Range<usize>>,
    /// Whether `key` holds an entry (false before the first entry and after a jump).
    has_key: bool,
}

impl BlockCursor {
    /// A cursor before the first entry.
    pub(crate) fn new(block: Arc<Block>) -> Self {
        Self {
            block,
            next_pos: 0,
            key: Vec::new(),
            value: None,
            has_key: false,
        }
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    /// The current entry's value; `None` for a tombstone.
    pub(crate) fn value(&self) -> Option<&[u8]> {
        let range = self.value.clone()?;
        self.block.entries().get(range)
    }

    /// Moves to the next entry; false (leaving the last key in place) at the block's end.
    pub(crate) fn advance(&mut self) -> Decoded<bool> {
        if self.next_pos >= self.block.entries().len() {
            return Ok(false);
        }
        let entry = self.block.entry_at(self.next_pos)?;
        let entries = self.block.entries();
        let suffix = entries.get(entry.key_suffix).unwrap_or_default();
        if entry.shared > self.key.len() {
            return Err(self.malformed("shared prefix longer than the previous key"));
        }
        // Both keys share `key[..shared]`, so the new key is greater iff its suffix is.
        if self.has_key && suffix <= &self.key[entry.shared..] {
            return Err(self.malformed("keys out of order"));
        }
        self.key.truncate(entry.shared);
        self.key.extend_from_slice(suffix);
        self.value = entry.value;
        self.next_pos = entry.next;
        self.has_key = true;
        Ok(true)
    }

    /// Moves to the first entry at or after `target` (per `mode`); false if none is.
    pub(crate) fn seek(&mut self, target: &[u8], mode: SeekMode) -> Decoded<bool> {
        // Restart keys are whole, so binary search them for the last one before the
        // target; the answer is in the run that starts there (or at the very first).
        let (mut low, mut high) = (0, self.block.restart_count());
        while low < high {
            let mid = low + (high - low) / 2;
            if mode.is_before(self.restart_key(mid)?, target) {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        self.next_pos = self.block.restart(low.saturating_sub(1));
        self.key.clear();
        self.has_key = false;
        while self.advance()? {
            if !mode.is_before(&self.key, target) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn restart_key(&self, i: usize) -> Decoded<&[u8]> {
        let entry = self.block.entry_at(self.block.restart(i))?;
        if entry.shared != 0 {
            return Err(self.malformed("restart entry shares a prefix"));
        }
        Ok(self
            .block
            .entries()
            .get(entry.key_suffix)
            .unwrap_or_default())
    }

    fn malformed(&self, reason: &'static str) -> Malformed {
        Malformed {
            reason,
            pos: self.next_pos,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::BlockEncoder;
    use super::*;

    fn block(entries: &[(&[u8], Option<&[u8]>)]) -> Arc<Block> {
        let mut encoder = BlockEncoder::default();
        for (key, value) in entries {
            encoder.add(key, *value);
        }
        Arc::new(Block::decode(encoder.finish()).expect("valid block"))
    }

    fn keys(count: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|i| format!("prefix/{:05}", i * 2).into_bytes())
            .collect()
    }

    #[test]
    fn iterates_all_entries_across_restarts() {
        let keys = keys(100);
        let entries: Vec<(&[u8], Option<&[u8]>)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_slice(), (i % 3 != 0).then_some(k.as_slice())))
            .collect();
        let mut cursor = BlockCursor::new(block(&entries));
        for (key, value) in &entries {
            assert_eq!(cursor.advance(), Ok(true));
            assert_eq!(cursor.key(), *key);
            assert_eq!(cursor.value(), *value);
        }
        assert_eq!(cursor.advance(), Ok(false));
    }

    #[test]
    fn seeks_present_absent_and_past_the_end() {
        let keys = keys(100);
        let entries: Vec<(&[u8], Option<&[u8]>)> = keys
            .iter()
            .map(|k| (k.as_slice(), Some(&b"v"[..])))
            .collect();
        let mut cursor = BlockCursor::new(block(&entries));
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(cursor.seek(key, SeekMode::AtOrAfter), Ok(true));
            assert_eq!(cursor.key(), key.as_slice());
            let found = cursor.seek(key, SeekMode::After);
            assert_eq!(found, Ok(i + 1 < keys.len()));
            if i + 1 < keys.len() {
                assert_eq!(cursor.key(), keys[i + 1].as_slice());
            }
            let between = format!("prefix/{:05}", i * 2 + 1).into_bytes();
            assert_eq!(
                cursor.seek(&between, SeekMode::AtOrAfter),
                Ok(i + 1 < keys.len())
            );
        }
        assert_eq!(cursor.seek(b"", SeekMode::AtOrAfter), Ok(true));
        assert_eq!(cursor.key(), keys[0].as_slice());
        assert_eq!(cursor.seek(b"z", SeekMode::AtOrAfter), Ok(false));
    }

    #[test]
    fn empty_key_and_empty_values() {
        let mut cursor = BlockCursor::new(block(&[(b"", Some(b"")), (b"a", None)]));
        assert_eq!(cursor.seek(b"", SeekMode::AtOrAfter), Ok(true));
        assert_eq!((cursor.key(), cursor.value()), (&b""[..], Some(&b""[..])));
        assert_eq!(cursor.seek(b"", SeekMode::After), Ok(true));
        assert_eq!((cursor.key(), cursor.value()), (&b"a"[..], None));
    }

    #[test]
    fn out_of_order_keys_are_malformed() {
        let mut encoder = BlockEncoder::default();
        encoder.add(b"b", None);
        encoder.add(b"a", None);
        let mut cursor =
            BlockCursor::new(Arc::new(Block::decode(encoder.finish()).expect("valid")));
        assert_eq!(cursor.advance(), Ok(true));
        assert!(cursor.advance().is_err());
    }
}

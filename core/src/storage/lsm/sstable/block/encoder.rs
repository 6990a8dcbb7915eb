use super::RESTART_INTERVAL;
use crate::storage::lsm::sstable::coding::put_varint;

/// Builds one data block. The writer guarantees keys arrive strictly increasing and that
/// a block stays far below 4 GiB (it flushes at ≤ 16 MiB plus one entry), so offsets fit
/// the format's u32 restart offsets.
#[derive(Debug, Default)]
pub(crate) struct BlockEncoder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    last_key: Vec<u8>,
    entries_since_restart: usize,
}

impl BlockEncoder {
    pub(crate) fn add(&mut self, key: &[u8], value: Option<&[u8]>) {
        let shared = if self.restarts.is_empty() || self.entries_since_restart == RESTART_INTERVAL {
            self.restarts.push(self.buf.len() as u32);
            self.entries_since_restart = 0;
            0
        } else {
            common_prefix_len(&self.last_key, key)
        };
        let suffix = &key[shared..];
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, suffix.len() as u64);
        put_varint(&mut self.buf, value.map_or(0, |v| v.len() as u64 + 1));
        self.buf.extend_from_slice(suffix);
        self.buf.extend_from_slice(value.unwrap_or_default());
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(suffix);
        self.entries_since_restart += 1;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.restarts.is_empty()
    }

    /// Decoded size the block would have if finished now.
    pub(crate) fn size_bytes(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    /// Returns the decoded block contents and starts a new block.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        for offset in &self.restarts {
            out.extend_from_slice(&offset.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        self.restarts.clear();
        self.last_key.clear();
        self.entries_since_restart = 0;
        out
    }
}

fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

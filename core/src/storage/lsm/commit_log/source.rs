//! Where replay reads bytes from: a whole slice (fuzzing, `decode_record`) or a block
//! file read ahead in chunks, so one algorithm in `reader` serves both.

use crate::storage::{BlockFile, Result, StorageError};

/// Read-ahead size: large enough that replaying many small records costs few reads.
const READ_CHUNK_SIZE_BYTES: usize = 256 * 1024;

pub(super) trait Source {
    fn name(&self) -> &str;
    fn len_bytes(&self) -> u64;
    /// The `len` bytes at `offset`; an error if they are not all inside the source.
    fn bytes(&mut self, offset: u64, len: usize) -> Result<&[u8]>;

    /// Whether every byte from `offset` to the end is zero.
    fn all_zero_from(&mut self, offset: u64) -> Result<bool> {
        let mut pos = offset;
        while pos < self.len_bytes() {
            let len = chunk_len(pos, self.len_bytes());
            if self.bytes(pos, len)?.iter().any(|&b| b != 0) {
                return Ok(false);
            }
            pos += len as u64;
        }
        Ok(true)
    }
}

/// Bytes to read at `pos`: a chunk, or what is left if less.
fn chunk_len(pos: u64, len_bytes: u64) -> usize {
    let left = len_bytes.saturating_sub(pos);
    usize::try_from(left.min(READ_CHUNK_SIZE_BYTES as u64)).unwrap_or(READ_CHUNK_SIZE_BYTES)
}

fn past_end(name: &str, offset: u64, len: usize, len_bytes: u64) -> StorageError {
    StorageError::io(
        name,
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("read of {len} bytes at {offset} past end {len_bytes}"),
        ),
    )
}

pub(super) struct SliceSource<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
}

impl Source for SliceSource<'_> {
    fn name(&self) -> &str {
        self.name
    }

    fn len_bytes(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn bytes(&mut self, offset: u64, len: usize) -> Result<&[u8]> {
        let range = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(len)?));
        match range.and_then(|r| self.bytes.get(r)) {
            Some(bytes) => Ok(bytes),
            None => Err(past_end(self.name, offset, len, self.len_bytes())),
        }
    }
}

/// A block file read through a window that moves forward: `buf` holds the file's bytes
/// from `buf_offset`. The length is taken once, at the start of replay.
pub(super) struct FileSource<'a> {
    file: &'a dyn BlockFile,
    len_bytes: u64,
    buf: Vec<u8>,
    buf_offset: u64,
}

impl<'a> FileSource<'a> {
    pub fn new(file: &'a dyn BlockFile) -> Result<Self> {
        Ok(Self {
            file,
            len_bytes: file.len()?,
            buf: Vec::new(),
            buf_offset: 0,
        })
    }
}

impl Source for FileSource<'_> {
    fn name(&self) -> &str {
        self.file.name()
    }

    fn len_bytes(&self) -> u64 {
        self.len_bytes
    }

    fn bytes(&mut self, offset: u64, len: usize) -> Result<&[u8]> {
        let end = match offset.checked_add(len as u64) {
            Some(end) if end <= self.len_bytes => end,
            _ => return Err(past_end(self.file.name(), offset, len, self.len_bytes)),
        };
        let buf_end = self.buf_offset + self.buf.len() as u64;
        if offset < self.buf_offset || end > buf_end {
            // Refill from `offset`: at least `len` (bounded by the caller's checks, at most
            // one record), else a whole chunk of read-ahead.
            let read_len = len.max(chunk_len(offset, self.len_bytes));
            self.buf.clear();
            self.buf.resize(read_len, 0);
            self.file.read_at(offset, &mut self.buf)?;
            self.buf_offset = offset;
        }
        // In range: offset >= buf_offset and end <= buf_offset + buf.len().
        let start = (offset - self.buf_offset) as usize;
        Ok(&self.buf[start..start + len])
    }
}

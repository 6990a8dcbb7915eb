//! Fixed-width little-endian and LEB128 varint encodings, and the bounds-checked reader
//! every decoder in this module parses through. Decoders report [`Malformed`] (no file
//! name, no IO); the reader turns it into `StorageError::Corruption` with the file and
//! the section's offset.

use crate::storage::error::StorageError;

/// A decoder found bytes that no writer of this format produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed {
    pub(crate) reason: &'static str,
    /// Position within the decoded section (after decompression), for the message only.
    pub(crate) pos: usize,
}

pub(crate) type Decoded<T> = std::result::Result<T, Malformed>;

impl Malformed {
    /// `offset` is where the section starts in the file: positions inside a compressed
    /// section have no file offset of their own.
    pub(crate) fn at(self, file: &str, offset: u64, section: &str) -> StorageError {
        StorageError::corruption(
            file,
            offset,
            format!(
                "{section}: {} (byte {} of the section)",
                self.reason, self.pos
            ),
        )
    }
}

/// Longest LEB128 encoding of a u64.
const VARINT_SIZE_BYTES_MAX: usize = 10;

pub(crate) fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// Reads through a byte slice; every read is bounds-checked and fails with [`Malformed`].
pub(crate) struct ByteReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub(crate) fn at(bytes: &'a [u8], pos: usize) -> Self {
        Self { bytes, pos }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    pub(crate) fn malformed(&self, reason: &'static str) -> Malformed {
        Malformed {
            reason,
            pos: self.pos,
        }
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Decoded<&'a [u8]> {
        let out = self
            .pos
            .checked_add(len)
            .and_then(|end| self.bytes.get(self.pos..end))
            .ok_or_else(|| self.malformed("length runs past the end"))?;
        self.pos += len;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Decoded<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Decoded<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32_le(&mut self) -> Decoded<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64_le(&mut self) -> Decoded<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn varint(&mut self) -> Decoded<u64> {
        let mut value = 0u64;
        for i in 0..VARINT_SIZE_BYTES_MAX {
            let byte = self.u8()?;
            // The tenth byte holds only bit 63; anything more would overflow.
            if i == VARINT_SIZE_BYTES_MAX - 1 && byte > 1 {
                return Err(self.malformed("varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.malformed("varint longer than 10 bytes"))
    }

    /// A varint that is a length or position, so must fit in memory.
    pub(crate) fn varint_usize(&mut self) -> Decoded<usize> {
        let value = self.varint()?;
        usize::try_from(value).map_err(|_| self.malformed("length does not fit in memory"))
    }

    pub(crate) fn length_prefixed(&mut self) -> Decoded<&'a [u8]> {
        let len = self.varint_usize()?;
        self.bytes(len)
    }

    pub(crate) fn expect_end(&self) -> Decoded<()> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(self.malformed("trailing bytes after the last field"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trips_edges() {
        for value in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX - 1, u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, value);
            let mut reader = ByteReader::new(&buf);
            assert_eq!(reader.varint(), Ok(value));
            assert_eq!(reader.remaining(), 0);
        }
    }

    #[test]
    fn varint_rejects_overflow_and_truncation() {
        let overflow = [0xff; 9].iter().copied().chain([0x02]).collect::<Vec<_>>();
        assert!(ByteReader::new(&overflow).varint().is_err());
        assert!(ByteReader::new(&[0x80, 0x80]).varint().is_err());
        assert!(ByteReader::new(&[0xff; 11]).varint().is_err());
    }

    #[test]
    fn bytes_is_bounds_checked() {
        let mut reader = ByteReader::at(&[1, 2, 3], 2);
        assert!(reader.bytes(usize::MAX).is_err());
        assert!(reader.bytes(2).is_err());
        assert_eq!(reader.bytes(1), Ok(&[3u8][..]));
    }
}

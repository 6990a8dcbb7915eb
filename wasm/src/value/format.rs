//! The byte-level pieces of the value encoding (format version 1), shared by the encoder
//! and the decoder. Documented for JS users in wasm/README.md ("Value encoding").
//!
//! ```text
//! value := VERSION (u8 = 1) item                  ; nothing may follow the item
//! item  := tag (u8) payload
//!   0x00 undefined         0x01 null      0x02 false      0x03 true
//!   0x04 number   f64 little-endian (bit-exact: -0, NaN, ±Infinity survive)
//!   0x05 string   len:varint, UTF-8 bytes
//!   0x06 bigint   len:varint, ASCII decimal digits with an optional leading '-'
//!   0x07 bytes    len:varint, raw bytes               (Uint8Array)
//!   0x08 array    count:varint, item*                 (holes read back as undefined)
//!   0x09 object   count:varint, (key:string-payload item)*   (plain objects only)
//!   0x0A map      count:varint, (item item)*          (Map: key, value)
//!   0x0B date     f64 little-endian milliseconds since the epoch
//!   0x0C set      count:varint, item*                 (Set)
//! varint := unsigned LEB128, at most 10 bytes, no overflow past u64
//! ```
//!
//! Tags are only ever appended; a change to an existing tag bumps `VERSION`.

pub const VERSION: u8 = 1;
/// Containers nested deeper than this are refused (this also stops cycles).
pub const DEPTH_MAX: usize = 64;

pub const TAG_UNDEFINED: u8 = 0x00;
pub const TAG_NULL: u8 = 0x01;
pub const TAG_FALSE: u8 = 0x02;
pub const TAG_TRUE: u8 = 0x03;
pub const TAG_NUMBER: u8 = 0x04;
pub const TAG_STRING: u8 = 0x05;
pub const TAG_BIGINT: u8 = 0x06;
pub const TAG_BYTES: u8 = 0x07;
pub const TAG_ARRAY: u8 = 0x08;
pub const TAG_OBJECT: u8 = 0x09;
pub const TAG_MAP: u8 = 0x0A;
pub const TAG_DATE: u8 = 0x0B;
pub const TAG_SET: u8 = 0x0C;

pub fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A cursor over encoded bytes whose every read is bounds-checked.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn u8(&mut self) -> Result<u8, String> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| format!("value ends early at byte {}", self.pos))?;
        self.pos += 1;
        Ok(b)
    }

    pub fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        if len > self.remaining() {
            return Err(format!(
                "length {len} at byte {} runs past the end ({} left)",
                self.pos,
                self.remaining()
            ));
        }
        let s = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(s)
    }

    pub fn f64(&mut self) -> Result<f64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }

    pub fn varint(&mut self) -> Result<u64, String> {
        let start = self.pos;
        let mut n: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            let part = u64::from(b & 0x7F);
            // The 10th byte may only carry the top bit of a u64.
            if i == 9 && part > 1 {
                return Err(format!("varint at byte {start} overflows 64 bits"));
            }
            n |= part << (7 * i);
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(format!("varint at byte {start} is longer than 10 bytes"))
    }

    /// A length or count that must fit in the bytes left (each counted unit takes at
    /// least `unit_bytes`), so a corrupt count never drives a huge allocation.
    pub fn len(&mut self, unit_bytes: usize) -> Result<usize, String> {
        let at = self.pos;
        let n = self.varint()?;
        let max = (self.remaining() / unit_bytes.max(1)) as u64;
        if n > max {
            return Err(format!(
                "count {n} at byte {at} exceeds what the {} remaining bytes can hold",
                self.remaining()
            ));
        }
        Ok(n as usize)
    }

    pub fn str(&mut self) -> Result<&'a str, String> {
        let len = self.len(1)?;
        let at = self.pos;
        std::str::from_utf8(self.take(len)?).map_err(|e| format!("string at byte {at}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_reject_overflow() {
        for n in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, n);
            let mut r = Reader::new(&out);
            assert_eq!(r.varint(), Ok(n));
            assert_eq!(r.remaining(), 0);
        }
        let too_long = [0xFFu8; 11];
        assert!(Reader::new(&too_long).varint().is_err());
        let overflow = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02];
        assert!(Reader::new(&overflow).varint().is_err());
    }

    #[test]
    fn counts_are_bounded_by_remaining_bytes() {
        let mut out = Vec::new();
        put_varint(&mut out, 1 << 40);
        out.extend_from_slice(&[0; 4]);
        assert!(Reader::new(&out).len(1).is_err());
    }
}

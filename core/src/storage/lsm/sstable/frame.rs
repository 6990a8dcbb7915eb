//! Framing shared by every section of a table (data blocks, index, bloom, properties):
//! the stored bytes are `payload ‖ compression: u8 ‖ crc32: u32 LE`, the CRC covering the
//! payload and the compression byte. An lz4 payload is `uncompressed_size: u32 LE ‖ lz4
//! block`.

use super::coding::{ByteReader, Decoded, Malformed};

pub(crate) const TRAILER_SIZE_BYTES: usize = 5;

/// Where a framed section is stored: its file offset and size, trailer included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Section {
    pub(crate) offset: u64,
    pub(crate) size_bytes: u64,
}

impl Section {
    pub(crate) fn end(self) -> Option<u64> {
        self.offset.checked_add(self.size_bytes)
    }
}

/// No section decompresses to more than this. The writer never compresses a section
/// larger than this, so the bound can never reject a table we wrote; it keeps a damaged
/// size field from making us allocate a huge buffer.
pub(crate) const UNCOMPRESSED_SIZE_BYTES_MAX: usize = 64 << 20;

/// lz4 emits at most 255 output bytes per input byte (a run's length grows by 255 per
/// extra length byte), plus a few for the last literals. Checking the claimed size
/// against it bounds the allocation by the bytes actually read.
const LZ4_EXPANSION_MAX: usize = 255;
const LZ4_EXPANSION_SLACK_BYTES: usize = 64;

const COMPRESSION_NONE: u8 = 0;
const COMPRESSION_LZ4: u8 = 1;

/// Frames `contents`, compressing with lz4 only when asked and when it saves at least an
/// eighth (decompression costs time on every read, so small savings are not worth it).
pub(crate) fn encode(contents: &[u8], compress: bool) -> Vec<u8> {
    if compress && contents.len() <= UNCOMPRESSED_SIZE_BYTES_MAX {
        let compressed = lz4_flex::block::compress(contents);
        let payload_size_bytes = 4 + compressed.len();
        if payload_size_bytes < contents.len() - contents.len() / 8 {
            let mut stored = Vec::with_capacity(payload_size_bytes + TRAILER_SIZE_BYTES);
            // Bounded by UNCOMPRESSED_SIZE_BYTES_MAX above, so it fits in u32.
            stored.extend_from_slice(&(contents.len() as u32).to_le_bytes());
            stored.extend_from_slice(&compressed);
            return seal(stored, COMPRESSION_LZ4);
        }
    }
    let mut stored = Vec::with_capacity(contents.len() + TRAILER_SIZE_BYTES);
    stored.extend_from_slice(contents);
    seal(stored, COMPRESSION_NONE)
}

fn seal(mut stored: Vec<u8>, compression: u8) -> Vec<u8> {
    stored.push(compression);
    let crc = crc32fast::hash(&stored);
    stored.extend_from_slice(&crc.to_le_bytes());
    stored
}

/// Verifies the CRC and returns the decompressed contents.
pub(crate) fn decode(mut stored: Vec<u8>) -> Decoded<Vec<u8>> {
    let Some(checked_size_bytes) = stored.len().checked_sub(4) else {
        return Err(Malformed {
            reason: "shorter than its trailer",
            pos: 0,
        });
    };
    let crc = ByteReader::at(&stored, checked_size_bytes).u32_le()?;
    if crc32fast::hash(&stored[..checked_size_bytes]) != crc {
        return Err(Malformed {
            reason: "checksum mismatch",
            pos: checked_size_bytes,
        });
    }
    let Some(payload_size_bytes) = checked_size_bytes.checked_sub(1) else {
        return Err(Malformed {
            reason: "shorter than its trailer",
            pos: 0,
        });
    };
    let compression = ByteReader::at(&stored, payload_size_bytes).u8()?;
    stored.truncate(payload_size_bytes);
    match compression {
        COMPRESSION_NONE => Ok(stored),
        COMPRESSION_LZ4 => decompress(&stored),
        _ => Err(Malformed {
            reason: "unknown compression type",
            pos: payload_size_bytes,
        }),
    }
}

fn decompress(payload: &[u8]) -> Decoded<Vec<u8>> {
    let mut reader = ByteReader::new(payload);
    let size_bytes = reader.u32_le()? as usize;
    let compressed = reader.bytes(reader.remaining())?;
    let expansion_max_bytes = compressed
        .len()
        .saturating_mul(LZ4_EXPANSION_MAX)
        .saturating_add(LZ4_EXPANSION_SLACK_BYTES);
    if size_bytes > UNCOMPRESSED_SIZE_BYTES_MAX || size_bytes > expansion_max_bytes {
        return Err(Malformed {
            reason: "implausible uncompressed size",
            pos: 0,
        });
    }
    match lz4_flex::block::decompress(compressed, size_bytes) {
        Ok(contents) if contents.len() == size_bytes => Ok(contents),
        Ok(_) => Err(Malformed {
            reason: "decompressed size differs from the recorded size",
            pos: 0,
        }),
        Err(_) => Err(Malformed {
            reason: "lz4 data is invalid",
            pos: 4,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_compressible_and_incompressible() {
        let compressible = vec![7u8; 10_000];
        let stored = encode(&compressible, true);
        assert!(stored.len() < 200, "expected lz4 to apply");
        assert_eq!(decode(stored), Ok(compressible.clone()));
        assert_eq!(decode(encode(&compressible, false)), Ok(compressible));
        let noise: Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let stored = encode(&noise, true);
        assert_eq!(stored.len(), noise.len() + TRAILER_SIZE_BYTES);
        assert_eq!(decode(stored), Ok(noise));
        assert_eq!(decode(encode(&[], true)), Ok(Vec::new()));
    }

    /// The expansion bound must admit the most compressible input lz4 sees.
    #[test]
    fn expansion_bound_admits_runs_of_zeros() {
        for size_bytes in [
            1,
            100,
            65_536,
            1 << 20,
            16 << 20,
            UNCOMPRESSED_SIZE_BYTES_MAX,
        ] {
            let zeros = vec![0u8; size_bytes];
            assert_eq!(
                decode(encode(&zeros, true)).map(|c| c.len()),
                Ok(size_bytes)
            );
        }
    }

    #[test]
    fn detects_every_single_byte_flip() {
        let stored = encode(
            &[1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3],
            true,
        );
        for i in 0..stored.len() {
            let mut damaged = stored.clone();
            damaged[i] ^= 0x40;
            assert!(decode(damaged).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn rejects_oversized_claims_before_allocating() {
        let mut payload = (u32::MAX).to_le_bytes().to_vec();
        payload.extend_from_slice(&[0x10, 0]);
        assert!(decode(seal(payload, COMPRESSION_LZ4)).is_err());
        assert!(decode(seal(vec![1], 9)).is_err());
        assert!(decode(vec![0; 4]).is_err());
    }
}

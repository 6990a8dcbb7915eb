//! The bloom filter's key hash. It is part of the file format: tables written on one
//! platform or run are read on another, so it must never change (std's hasher is
//! randomly seeded per process). Explicit little-endian loads and wrapping arithmetic
//! keep it identical on 32- and 64-bit, little- and big-endian targets.
//!
//! Construction: xxHash64-style rounds over 8-byte words (the tail zero-padded), seeded
//! with the length so padded tails cannot collide with real zeros, then murmur3's fmix64.

const PRIME_1: u64 = 0x9E37_79B1_85EB_CA87;
const PRIME_2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const PRIME_3: u64 = 0x1656_67B1_9E37_79F9;

pub(crate) fn hash64(bytes: &[u8]) -> u64 {
    let mut h = PRIME_3 ^ (bytes.len() as u64).wrapping_mul(PRIME_1);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        h = round(h, load_le(word));
    }
    let tail = words.remainder();
    if !tail.is_empty() {
        h = round(h, load_le(tail));
    }
    fmix64(h)
}

/// Reads up to 8 bytes as a little-endian u64, zero-padding a short tail.
fn load_le(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    let len = bytes.len().min(8);
    word[..len].copy_from_slice(&bytes[..len]);
    u64::from_le_bytes(word)
}

fn round(h: u64, word: u64) -> u64 {
    let k = word
        .wrapping_mul(PRIME_2)
        .rotate_left(31)
        .wrapping_mul(PRIME_1);
    (h ^ k)
        .rotate_left(27)
        .wrapping_mul(PRIME_1)
        .wrapping_add(PRIME_3)
}

fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned outputs, computed by an independent reimplementation of the algorithm (the
    /// one in docs/format/sstable.md): a change here silently breaks every filter on disk.
    #[test]
    fn hash_is_stable() {
        let pinned: [(&[u8], u64); 4] = [
            (b"", 0xF490_368A_BA8B_FEAC),
            (b"a", 0x87F1_E1AE_A678_013D),
            (b"ringkv-sstable", 0xA3F8_FE33_6CC6_714E),
            (&[0u8; 8], 0xF18E_B85C_8B11_35AA),
        ];
        for (input, expected) in pinned {
            assert_eq!(hash64(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn padding_does_not_collide() {
        assert_ne!(hash64(b"a"), hash64(b"a\0"));
        assert_ne!(hash64(b""), hash64(b"\0"));
        assert_ne!(hash64(&[0u8; 8]), hash64(&[0u8; 16]));
    }
}

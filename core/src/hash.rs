//! SipHash-2-4 (Aumasson & Bernstein, 2012), the one stable hash of the core: ring
//! positions and Merkle entries both use it, under different keys.
//!
//! Why not `std::hash::DefaultHasher`: its algorithm is explicitly unspecified and may
//! change between Rust releases, and every member of a cluster (native and wasm, old and
//! new binaries during a rolling upgrade) must place keys and hash entries identically.
//! SipHash-2-4 is a fixed, published function with published test vectors; the tests
//! check this implementation against them and against std's (deprecated but frozen)
//! `SipHasher`. Only `u64` arithmetic and explicit little-endian loads: the same output on
//! every target.

/// SipHash-2-4 of `bytes` under the 128-bit key `(k0, k1)`.
pub fn siphash24(k0: u64, k1: u64, bytes: &[u8]) -> u64 {
    let mut hasher = SipHasher24::new(k0, k1);
    hasher.write(bytes);
    hasher.finish()
}

/// Streaming SipHash-2-4: hashing several pieces equals hashing their concatenation.
pub struct SipHasher24 {
    v: [u64; 4],
    /// Bytes not yet compressed (fewer than 8).
    tail: [u8; 8],
    tail_len: usize,
    /// Total message length; only its low byte enters the final block (per the spec).
    length: u64,
}

impl SipHasher24 {
    pub fn new(k0: u64, k1: u64) -> Self {
        SipHasher24 {
            v: [
                k0 ^ 0x736f_6d65_7073_6575,
                k1 ^ 0x646f_7261_6e64_6f6d,
                k0 ^ 0x6c79_6765_6e65_7261,
                k1 ^ 0x7465_6462_7974_6573,
            ],
            tail: [0; 8],
            tail_len: 0,
            length: 0,
        }
    }

    pub fn write(&mut self, mut bytes: &[u8]) {
        self.length = self.length.wrapping_add(bytes.len() as u64);
        // Top up a partial block first.
        if self.tail_len > 0 {
            let take = (8 - self.tail_len).min(bytes.len());
            let (head, rest) = bytes.split_at(take);
            self.tail[self.tail_len..self.tail_len + take].copy_from_slice(head);
            self.tail_len += take;
            bytes = rest;
            if self.tail_len < 8 {
                return;
            }
            self.compress(u64::from_le_bytes(self.tail));
            self.tail_len = 0;
        }
        let mut blocks = bytes.chunks_exact(8);
        for block in &mut blocks {
            let mut word = [0u8; 8];
            word.copy_from_slice(block);
            self.compress(u64::from_le_bytes(word));
        }
        let rest = blocks.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    pub fn finish(mut self) -> u64 {
        let mut last = [0u8; 8];
        last[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
        last[7] = (self.length & 0xff) as u8;
        self.compress(u64::from_le_bytes(last));
        self.v[2] ^= 0xff;
        for _ in 0..4 {
            self.round();
        }
        self.v[0] ^ self.v[1] ^ self.v[2] ^ self.v[3]
    }

    /// Two compression rounds per message word (the "2" of SipHash-2-4).
    fn compress(&mut self, word: u64) {
        self.v[3] ^= word;
        self.round();
        self.round();
        self.v[0] ^= word;
    }

    fn round(&mut self) {
        let [mut v0, mut v1, mut v2, mut v3] = self.v;
        v0 = v0.wrapping_add(v1);
        v1 = v1.rotate_left(13) ^ v0;
        v0 = v0.rotate_left(32);
        v2 = v2.wrapping_add(v3);
        v3 = v3.rotate_left(16) ^ v2;
        v0 = v0.wrapping_add(v3);
        v3 = v3.rotate_left(21) ^ v0;
        v2 = v2.wrapping_add(v1);
        v1 = v1.rotate_left(17) ^ v2;
        v2 = v2.rotate_left(32);
        self.v = [v0, v1, v2, v3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K0: u64 = 0x0706_0504_0302_0100;
    const K1: u64 = 0x0f0e_0d0c_0b0a_0908;

    #[test]
    fn matches_reference_vectors() {
        let expected: [(usize, u64); 4] = [
            (0, 0x726f_db47_dd0e_0e31),
            (1, 0x74f8_39c5_93dc_67fd),
            (2, 0x0d6c_8009_d9a9_4f5a),
            (15, 0xa129_ca61_49be_45e5),
        ];
        for (len, want) in expected {
            let message: Vec<u8> = (0..len as u8).collect();
            assert_eq!(siphash24(K0, K1, &message), want, "len {len}");
        }
    }

    /// Every split of every message of length < 40 gives std's (frozen) SipHash-2-4.
    #[test]
    #[allow(deprecated)]
    fn streaming_matches_std_siphasher_for_all_splits() {
        use std::hash::Hasher;
        for len in 0..40usize {
            let message: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut std_hasher = std::hash::SipHasher::new_with_keys(K0 ^ 9, K1);
            std_hasher.write(&message);
            let want = std_hasher.finish();
            for first in 0..=len {
                for second in first..=len {
                    let mut hasher = SipHasher24::new(K0 ^ 9, K1);
                    hasher.write(&message[..first]);
                    hasher.write(&message[first..second]);
                    hasher.write(&message[second..]);
                    assert_eq!(hasher.finish(), want, "len {len} split {first}/{second}");
                }
            }
        }
    }
}

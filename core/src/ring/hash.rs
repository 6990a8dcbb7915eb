//! SipHash-2-4 (Aumasson & Bernstein, 2012), implemented here so that ring positions
//! depend on nothing but this file.
//!
//! Why not `std::hash::DefaultHasher`: its algorithm is explicitly unspecified and may
//! change between Rust releases, and every member of a cluster (native and wasm, old and
//! new binaries during a rolling upgrade) must place keys and tokens identically.
//! SipHash-2-4 is a fixed, published function with published test vectors; the unit
//! tests check this implementation against them and against std's (deprecated but
//! frozen) `SipHasher`. Only integer arithmetic on `u64`, explicit little-endian byte
//! order: the result is identical on every platform.

/// SipHash-2-4 of `bytes` under the 128-bit key `(k0, k1)`.
pub fn siphash24(k0: u64, k1: u64, bytes: &[u8]) -> u64 {
    let mut state = SipState::new(k0, k1);
    let mut blocks = bytes.chunks_exact(8);
    for block in &mut blocks {
        state.compress(read_u64_le(block));
    }
    // Last block: remaining 0..=7 bytes, zero padded, with the low byte of the message
    // length in the top byte (the specification's padding rule).
    let tail = blocks.remainder();
    let mut last = [0u8; 8];
    last[..tail.len()].copy_from_slice(tail);
    last[7] = (bytes.len() & 0xff) as u8;
    state.compress(read_u64_le(&last));
    state.finish()
}

/// Little-endian `u64` from the first 8 bytes of `block` (callers pass exactly 8).
fn read_u64_le(block: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&block[..8]);
    u64::from_le_bytes(word)
}

struct SipState {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
}

impl SipState {
    fn new(k0: u64, k1: u64) -> Self {
        SipState {
            v0: k0 ^ 0x736f_6d65_7073_6575,
            v1: k1 ^ 0x646f_7261_6e64_6f6d,
            v2: k0 ^ 0x6c79_6765_6e65_7261,
            v3: k1 ^ 0x7465_6462_7974_6573,
        }
    }

    fn round(&mut self) {
        self.v0 = self.v0.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(13) ^ self.v0;
        self.v0 = self.v0.rotate_left(32);
        self.v2 = self.v2.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(16) ^ self.v2;
        self.v0 = self.v0.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(21) ^ self.v0;
        self.v2 = self.v2.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(17) ^ self.v2;
        self.v2 = self.v2.rotate_left(32);
    }

    /// Two compression rounds per message word (the "2" of SipHash-2-4).
    fn compress(&mut self, word: u64) {
        self.v3 ^= word;
        self.round();
        self.round();
        self.v0 ^= word;
    }

    /// Four finalization rounds (the "4").
    fn finish(mut self) -> u64 {
        self.v2 ^= 0xff;
        for _ in 0..4 {
            self.round();
        }
        self.v0 ^ self.v1 ^ self.v2 ^ self.v3
    }
}

#[cfg(test)]
mod tests {
    use super::siphash24;

    /// The reference key 00 01 02 .. 0f, as the two little-endian words.
    const K0: u64 = 0x0706_0504_0302_0100;
    const K1: u64 = 0x0f0e_0d0c_0b0a_0908;

    #[test]
    fn matches_reference_vectors() {
        // From the SipHash paper's appendix / reference `vectors.h`: message
        // 00 01 .. (len-1) under key 00 .. 0f.
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

    #[test]
    #[allow(deprecated)]
    fn matches_std_siphasher_for_all_lengths() {
        use std::hash::Hasher;
        for len in 0..100usize {
            let message: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut std_hasher = std::hash::SipHasher::new_with_keys(K0 ^ 5, K1);
            std_hasher.write(&message);
            assert_eq!(
                siphash24(K0 ^ 5, K1, &message),
                std_hasher.finish(),
                "len {len}"
            );
        }
    }
}

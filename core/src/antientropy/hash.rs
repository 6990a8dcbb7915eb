//! Entry hashing: a stable 64-bit hash of `(key, version digest)`, identical on every
//! platform and release.
//!
//! SipHash-2-4 with fixed keys, streaming so that hashing an entry does not allocate.
//! This is a second copy of the function in `ring/hash.rs` (private to `ring`); both are
//! checked against std's frozen `SipHasher`, so they cannot drift apart. The keys below
//! differ from the ring's, so entry hashes are independent of key positions (the bucket
//! of a key says nothing about its entry hash).
//!
//! Changing a constant here changes every tree's hashes: mixed-version replicas would
//! see every range as different and re-stream everything. Treat them as wire format.

/// A replica's digest of one key's version (tag, sibling clock, ...), computed by the
/// node. Equal versions must give equal digests on every replica.
pub type VersionDigest = u64;

const ENTRY_K0: u64 = 0x7269_6e67_6b76_2d6d; // "ringkv-m"
const ENTRY_K1: u64 = 0x6572_6b6c_652d_3031; // "erkle-01"
const DIGEST_K0: u64 = 0x7269_6e67_6b76_2d76; // "ringkv-v"
const DIGEST_K1: u64 = 0x6572_7369_6f6e_2d31; // "ersion-1"

/// Hash of one tree entry. The digest is a fixed 8-byte suffix, so `key ‖ digest` is
/// unambiguous without a length prefix.
pub fn entry_hash(key: &[u8], digest: VersionDigest) -> u64 {
    let mut hasher = SipHasher24::new(ENTRY_K0, ENTRY_K1);
    hasher.write(key);
    hasher.write(&digest.to_le_bytes());
    hasher.finish()
}

/// Convenience for the node: a [`VersionDigest`] of a canonical encoding of a version
/// (e.g. a tag's bytes, or the postcard encoding of a sibling set's clock).
pub fn version_digest(canonical_version_bytes: &[u8]) -> VersionDigest {
    let mut hasher = SipHasher24::new(DIGEST_K0, DIGEST_K1);
    hasher.write(canonical_version_bytes);
    hasher.finish()
}

/// Streaming SipHash-2-4 (Aumasson & Bernstein). Only `u64` arithmetic and explicit
/// little-endian loads: the same output on every target.
pub(crate) struct SipHasher24 {
    v: [u64; 4],
    /// Bytes not yet compressed (fewer than 8).
    tail: [u8; 8],
    tail_len: usize,
    /// Total message length; only its low byte enters the final block (per the spec).
    length: u64,
}

impl SipHasher24 {
    pub(crate) fn new(k0: u64, k1: u64) -> Self {
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

    pub(crate) fn write(&mut self, mut bytes: &[u8]) {
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

    pub(crate) fn finish(mut self) -> u64 {
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

    fn one_shot(k0: u64, k1: u64, bytes: &[u8]) -> u64 {
        let mut hasher = SipHasher24::new(k0, k1);
        hasher.write(bytes);
        hasher.finish()
    }

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
            assert_eq!(one_shot(K0, K1, &message), want, "len {len}");
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

    /// Pinned outputs: if these change, replicas on old and new binaries disagree on
    /// every tree. Never "fix" the expected values; fix the code.
    #[test]
    fn entry_hashes_are_pinned() {
        let pinned = [
            entry_hash(b"", 0),
            entry_hash(b"key-0", 1),
            version_digest(b"tag"),
        ];
        assert_eq!(pinned, PINNED);
    }

    const PINNED: [u64; 3] = [
        0x20cf_df98_7c4b_d7bb,
        0x3a00_1439_cc47_0f1f,
        0xd7c2_67da_5b0a_4ec6,
    ];
}

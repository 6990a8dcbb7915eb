//! Entry hashing: a stable 64-bit hash of `(key, version digest)`, identical on every
//! platform and release.
//!
//! SipHash-2-4 (`crate::hash`) with fixed keys, streamed so hashing an entry does not
//! allocate. The keys below differ from the ring's, so entry hashes are independent of
//! key positions (the bucket of a key says nothing about its entry hash).
//!
//! Changing a constant here changes every tree's hashes: mixed-version replicas would
//! see every range as different and re-stream everything. Treat them as wire format.

use crate::hash::SipHasher24;

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

#[cfg(test)]
mod tests {
    use super::*;

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

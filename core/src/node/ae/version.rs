//! The versions anti-entropy compares: a linearizable register's `(tag, tombstone)`
//! ([`RegisterVersion`]) and an eventual key's sibling state, by digest
//! ([`EventualVersion`]).
//!
//! Under ABD a tag names exactly one write (tags are unique per write, see `tags.rs`),
//! so the tag determines the value and two replicas with equal tags hold equal
//! registers: comparing versions never needs the values. The tombstone flag is part of
//! the version so a missed delete shows up as a difference like any missed write.
//!
//! The canonical encoding below is both the position index's value and the input of
//! the Merkle digest, so a digest can be computed from an index entry without reading
//! the record. It is fixed-width with explicit byte order (independent of postcard's
//! varints and of the platform) and starts with a format byte, so eventual-mode
//! entries (sibling clocks) can use another format byte later.
//! **Changing it changes every digest** (mixed binaries would see every range differ):
//! treat it as on-disk and wire format.

use crate::antientropy::{version_digest, VersionDigest};
use crate::protocol::antientropy::EntryVersion;
use crate::ring::NodeId;
use crate::versioning::Tag;

/// Format byte of a linearizable register's version.
const REGISTER_FORMAT: u8 = 1;
/// Format byte of an eventual key's version.
const EVENTUAL_FORMAT: u8 = 2;
/// `format ‖ state digest u64 LE`.
pub(crate) const EVENTUAL_ENCODED_LEN: usize = 9;
/// `format ‖ counter u64 LE ‖ node u64 LE ‖ tombstone u8`.
pub(crate) const ENCODED_LEN: usize = 18;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RegisterVersion {
    pub tag: Tag,
    pub tombstone: bool,
}

impl RegisterVersion {
    /// The version of a register holding `value` under `tag` (`None`: a tombstone).
    pub fn of(tag: Tag, value: Option<&[u8]>) -> Self {
        RegisterVersion {
            tag,
            tombstone: value.is_none(),
        }
    }

    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let mut bytes = [0u8; ENCODED_LEN];
        bytes[0] = REGISTER_FORMAT;
        bytes[1..9].copy_from_slice(&self.tag.counter.to_le_bytes());
        bytes[9..17].copy_from_slice(&self.tag.node.0.to_le_bytes());
        bytes[17] = u8::from(self.tombstone);
        bytes
    }

    /// `None` for anything but a well-formed register version.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; ENCODED_LEN] = bytes.try_into().ok()?;
        if bytes[0] != REGISTER_FORMAT {
            return None;
        }
        let counter = u64::from_le_bytes(bytes[1..9].try_into().ok()?);
        let node = u64::from_le_bytes(bytes[9..17].try_into().ok()?);
        let tombstone = match bytes[17] {
            0 => false,
            1 => true,
            _ => return None,
        };
        Some(RegisterVersion {
            tag: Tag {
                counter,
                node: NodeId(node),
            },
            tombstone,
        })
    }

    /// The Merkle digest: equal on every replica holding this version.
    pub fn digest(&self) -> VersionDigest {
        version_digest(&self.encode())
    }
}

/// The version of an eventual key's stored sibling state: a digest of its record's
/// bytes. States only ever merge, so versions are not ordered: two replicas agree iff
/// their digests are equal (the record encoding is canonical: postcard of ordered
/// maps), and on any difference each side sends its state to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventualVersion {
    pub digest: u64,
}

impl EventualVersion {
    /// The version of a stored `e/` record (its encoded bytes).
    pub fn of_record(record: &[u8]) -> Self {
        EventualVersion {
            digest: version_digest(record),
        }
    }

    pub fn encode(&self) -> [u8; EVENTUAL_ENCODED_LEN] {
        let mut bytes = [0u8; EVENTUAL_ENCODED_LEN];
        bytes[0] = EVENTUAL_FORMAT;
        bytes[1..9].copy_from_slice(&self.digest.to_le_bytes());
        bytes
    }

    /// `None` for anything but a well-formed eventual version.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; EVENTUAL_ENCODED_LEN] = bytes.try_into().ok()?;
        if bytes[0] != EVENTUAL_FORMAT {
            return None;
        }
        Some(EventualVersion {
            digest: u64::from_le_bytes(bytes[1..9].try_into().ok()?),
        })
    }

    /// The Merkle digest. The format byte keeps it apart from every register digest,
    /// so a key's register and eventual entries are distinct terms of a bucket's sum.
    pub fn digest(&self) -> VersionDigest {
        version_digest(&self.encode())
    }
}

/// The Merkle digest of either kind of index entry.
pub(crate) fn entry_digest(version: &EntryVersion) -> VersionDigest {
    match *version {
        EntryVersion::Register { tag, tombstone } => RegisterVersion { tag, tombstone }.digest(),
        EntryVersion::Eventual { digest } => EventualVersion { digest }.digest(),
    }
}

impl From<RegisterVersion> for EntryVersion {
    fn from(version: RegisterVersion) -> Self {
        EntryVersion::Register {
            tag: version.tag,
            tombstone: version.tombstone,
        }
    }
}

impl From<EventualVersion> for EntryVersion {
    fn from(version: EventualVersion) -> Self {
        EntryVersion::Eventual {
            digest: version.digest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rejects_garbage_and_is_pinned() {
        let version = RegisterVersion {
            tag: Tag {
                counter: 0x0102,
                node: NodeId(3),
            },
            tombstone: true,
        };
        let bytes = version.encode();
        assert_eq!(RegisterVersion::decode(&bytes), Some(version));
        assert_eq!(RegisterVersion::decode(&bytes[..17]), None);
        let mut bad = bytes;
        bad[17] = 2;
        assert_eq!(RegisterVersion::decode(&bad), None);
        bad = bytes;
        bad[0] = 9;
        assert_eq!(RegisterVersion::decode(&bad), None);
        // The tombstone flag is part of the digest: a missed delete differs.
        let live = RegisterVersion {
            tombstone: false,
            ..version
        };
        assert_ne!(live.digest(), version.digest());
        // Pinned: replicas on different binaries must agree on digests.
        assert_eq!(
            bytes,
            [1, 2, 1, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1]
        );
        assert_eq!(version.digest(), PINNED_DIGEST);
    }

    const PINNED_DIGEST: u64 = 0xd704_cd25_bc09_1881;

    #[test]
    fn eventual_versions_round_trip_and_never_equal_a_register_digest() {
        let version = EventualVersion::of_record(b"state");
        let bytes = version.encode();
        assert_eq!(EventualVersion::decode(&bytes), Some(version));
        assert_eq!(EventualVersion::decode(&bytes[..8]), None);
        assert_eq!(RegisterVersion::decode(&bytes), None);
        let mut bad = bytes;
        bad[0] = 1;
        assert_eq!(EventualVersion::decode(&bad), None);
        assert_ne!(version.digest(), version.digest ^ 1);
        assert_ne!(
            EventualVersion::of_record(b"state").digest(),
            EventualVersion::of_record(b"other").digest()
        );
    }
}

//! Anti-entropy repair messages: after a Merkle exchange
//! ([`crate::antientropy::ExchangeRequest`]) found differing leaf buckets, the two
//! replicas compare `(key, version)` lists of those buckets page by page and push the
//! newer registers across.
//!
//! Protocol (initiator I, responder R; a span is a run of adjacent differing buckets of
//! the exchange's range, and the spans are listed in range order):
//! 1. I sends a [`KeyPage`]: the next spans (at most [`KEY_PAGE_SPANS_MAX`]) and its
//!    own index entries in them after a cursor, in range order, at most
//!    [`KEY_PAGE_ENTRIES_MAX`] entries and about [`KEY_PAGE_KEY_BYTES_MAX`] key bytes.
//!    One page covers many small spans, so scattered differences cost pages in
//!    proportion to their keys, not to their number.
//! 2. R lists its own entries of the same spans from the same cursor (same bounds),
//!    works out how far both lists are complete (`covered_to`), pushes every register
//!    it holds newer (or that I lacks) up to that point as
//!    [`super::PeerMessage::AntiEntropyPush`], and answers with a [`KeyPageReply`]
//!    naming the entries of I's page that it wants.
//! 3. I pushes the wanted registers and continues after `covered_to` (or after the
//!    page's last span), until every span is done.
//!
//! R keeps no state: a lost page or reply is resent by I, a duplicate answered twice,
//! and pushes are idempotent (applied iff their tag is greater). Range order is the
//! clockwise offset of a key's position from the range's start, then key bytes: the
//! order of the position index, so both sides walk the same sequence.

use serde::{Deserialize, Serialize};

use crate::antientropy::ExchangeId;
use crate::ring::TokenRange;
use crate::versioning::Tag;

/// Most entries in one [`KeyPage`] (and index entries a responder lists per page).
pub const KEY_PAGE_ENTRIES_MAX: usize = 256;
/// Most spans one [`KeyPage`] covers (each costs each side one or two index scans).
pub const KEY_PAGE_SPANS_MAX: usize = 64;
/// Key bytes one [`KeyPage`] carries at most, besides its cursor; a page always holds
/// at least one entry, so a single larger key (up to the key size limit) still fits.
pub const KEY_PAGE_KEY_BYTES_MAX: usize = 256 << 10;
/// Key + value bytes a node pushes in answer to one page (responder) or one reply
/// (initiator), besides the first push, which always goes out (so a page always makes
/// progress even with a value larger than this).
pub const PUSH_BYTES_PER_PAGE_MAX: usize = 1 << 20;

/// One key's version as a replica's index holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVersion {
    pub key: Vec<u8>,
    pub version: EntryVersion,
}

/// What is compared for one key: a register's tag (ordered) or an eventual key's
/// sibling-state digest (equal or not: states merge, they are not ordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryVersion {
    Register {
        tag: Tag,
        /// The register holds a delete (a tombstone is an entry like any other: a
        /// missed delete must show up and travel).
        tombstone: bool,
    },
    Eventual {
        /// Digest of the replica's stored state record.
        digest: u64,
    },
}

/// Initiator → responder: "my entries of `spans` after `after`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPage {
    /// The exchange this repair belongs to.
    pub id: ExchangeId,
    /// The exchange's range (the responder checks that it replicates it and that the
    /// sender is a co-replica).
    pub range: TokenRange,
    /// Numbers the pages of one exchange; echoed so replies match their page.
    pub page: u32,
    /// The differing arcs compared, inside `range`, disjoint and in range order.
    pub spans: Vec<TokenRange>,
    /// Exclusive start (a key in the first span); `None` = the first span's start.
    pub after: Option<Vec<u8>>,
    /// The initiator's entries in `spans` after `after`, strictly ascending in range
    /// order.
    pub entries: Vec<KeyVersion>,
    /// `entries` run to the last span's end (otherwise they stop at a page limit).
    pub complete: bool,
    /// Which keys the page compares: linearizable registers (`false`; the `p/`
    /// index) or eventual keys (`true`; the `q/` index). Every entry is of that kind.
    pub eventual: bool,
}

/// Responder → initiator, after pushing what it holds newer up to `covered_to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPageReply {
    pub id: ExchangeId,
    pub range: TokenRange,
    pub page: u32,
    /// Both sides' entries are compared up to and including this key (in range order);
    /// `None` = to the page's last span's end. The next page starts after it.
    pub covered_to: Option<Vec<u8>>,
    /// Offsets into the page's `entries`, strictly ascending, of registers the
    /// initiator holds newer than the responder (or the responder lacks), or of
    /// eventual keys whose states differ: push them.
    pub want: Vec<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{decode, encode, PeerMessage, FRAME_SIZE_BYTES_MAX};
    use crate::ring::NodeId;

    /// The largest page the node builds with default limits (8 KiB keys) fits a frame
    /// with room to spare: 256 KiB of keys plus one oversized key and the cursor.
    #[test]
    fn worst_case_page_fits_a_frame() {
        let key_max = 8 << 10;
        let tag = Tag {
            counter: u64::MAX,
            node: NodeId(u64::MAX),
        };
        let per_key = KEY_PAGE_KEY_BYTES_MAX / KEY_PAGE_ENTRIES_MAX;
        let mut entries: Vec<KeyVersion> = (0..KEY_PAGE_ENTRIES_MAX - 1)
            .map(|i| KeyVersion {
                key: vec![i as u8; per_key],
                version: EntryVersion::Register {
                    tag,
                    tombstone: false,
                },
            })
            .collect();
        entries.push(KeyVersion {
            key: vec![0; key_max],
            version: EntryVersion::Register {
                tag,
                tombstone: true,
            },
        });
        let page = PeerMessage::AntiEntropyKeys(KeyPage {
            id: u64::MAX,
            range: TokenRange::new(u64::MAX, u64::MAX - 1),
            page: u32::MAX,
            spans: vec![TokenRange::new(u64::MAX, u64::MAX - 1); KEY_PAGE_SPANS_MAX],
            after: Some(vec![7; key_max]),
            entries,
            complete: false,
            eventual: false,
        });
        let frame = encode(&page).expect("fits");
        assert!(frame.len() < KEY_PAGE_KEY_BYTES_MAX + 3 * key_max + 8 * 1024 + 64 * 20);
        assert!(frame.len() < FRAME_SIZE_BYTES_MAX / 4);
        assert_eq!(decode(&frame).expect("decodes"), page);
        let reply = PeerMessage::AntiEntropyKeysReply(KeyPageReply {
            id: 1,
            range: TokenRange::FULL,
            page: 2,
            covered_to: Some(vec![1; key_max]),
            want: (0..KEY_PAGE_ENTRIES_MAX as u16).collect(),
        });
        assert_eq!(
            decode(&encode(&reply).expect("fits")).expect("decodes"),
            reply
        );
    }
}

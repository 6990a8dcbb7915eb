//! Membership messages: choosing a layout change (single-decree Paxos per layout
//! version, among the committed layout's members), spreading the layout history, and
//! streaming moved ranges to their new replicas.
//!
//! Sync (new replica X of moved ranges, old replica S of some of them):
//! 1. X sends `SyncPull { epoch, cursor: None }` to S.
//! 2. S serves only if its own epoch equals `epoch` (so S is fenced: it refuses data
//!    messages of older epochs from now on, persisted before the page is read). If S is
//!    behind it answers `SyncBehind` (X then sends it the history); if S is ahead (it
//!    already committed or knows a newer change) it answers with its history.
//! 3. S answers `SyncPage` with its registers, then eventual states, of the ranges
//!    where S is an old and X a new replica, in bounded pages; X applies them by tag
//!    (registers) or merge (eventual), durably, then asks for the next page.
//!
//! S keeps no state; lost or duplicated pulls are resent or answered twice.

use serde::{Deserialize, Serialize};

use crate::ring::{LayoutHistory, NodeId, RingLayout};
use crate::versioning::Tag;

use super::messages::SiblingState;

/// A Paxos ballot: `(round, proposer)`, totally ordered and unique per proposer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Ballot {
    pub round: u64,
    pub node: NodeId,
}

/// What one member tells another about the cluster's layout, as itself: its history
/// and its Paxos vote for the version after its committed layout. A node adopts a newer
/// layout only once a majority of its own layout's members have reported it (or voted
/// for it in one ballot), never on one member's word (`node/membership/confirm.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutReport {
    pub history: LayoutHistory,
    /// `(version, ballot, layout)` this member accepted for `history.committed() + 1`.
    pub vote: Option<(u64, Ballot, RingLayout)>,
}

/// Most entries in one [`SyncPage`].
pub const SYNC_PAGE_ENTRIES_MAX: usize = 256;
/// Key + value bytes of one page, besides its first entry (which always goes, so a
/// page makes progress even with a value larger than this).
pub const SYNC_PAGE_BYTES_MAX: usize = 512 << 10;

/// Where a sync stream continues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncCursor {
    /// Registers, in position-index order, after `(span, key)`: `span` indexes the
    /// stream's range list (the same list on both sides: a function of the history).
    Registers { span: u32, after: Option<Vec<u8>> },
    /// Eventual-mode states, in key order, after `after`.
    Eventual { after: Option<Vec<u8>> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncEntry {
    Register {
        key: Vec<u8>,
        tag: Tag,
        value: Option<Vec<u8>>,
    },
    Eventual {
        key: Vec<u8>,
        state: SiblingState,
    },
}

/// One page of a sync stream; `next: None` means the stream is complete.
///
/// Size: entries stop before `SYNC_PAGE_BYTES_MAX` of keys and values (the first entry
/// always goes); with the node's limits (`NodeConfig::validate`: two keys and a value
/// or sibling state fit a frame) even a page of one maximal entry plus `next` fits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncPage {
    pub epoch: u64,
    /// [`cursor_digest`] of the pull this page answers (the requester ignores pages for
    /// other cursors); a digest, not the cursor, so the page carries one key, not two.
    pub cursor: u64,
    pub entries: Vec<SyncEntry>,
    pub next: Option<SyncCursor>,
}

/// Identifies a pull's cursor in its page (SipHash of its encoding; `None` is 0).
pub fn cursor_digest(cursor: Option<&SyncCursor>) -> u64 {
    match cursor.map(postcard::to_allocvec) {
        None => 0,
        Some(Ok(bytes)) => crate::hash::siphash24(0x7379_6e63, 0x6375_7273, &bytes),
        Some(Err(_)) => u64::MAX,
    }
}

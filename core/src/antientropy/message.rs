//! Exchange wire messages (serde; the node wraps them in its peer messages).
//!
//! The initiator drives; the responder is stateless: it answers each request from its
//! current tree alone, so requests can be lost, duplicated or reordered without
//! corrupting anything (the initiator ignores duplicates and times out on losses).
//! Every message names its exchange, range and depth, so a response is never matched
//! against the wrong tree. Size: at most [`MAX_HASHES_PER_MESSAGE`] hashes (requests) or
//! offsets (responses) per message.
//!
//! [`MAX_HASHES_PER_MESSAGE`]: super::config::MAX_HASHES_PER_MESSAGE

use serde::{Deserialize, Serialize};

use crate::ring::TokenRange;

/// One range's root in a [`RootBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootEntry {
    pub range: TokenRange,
    pub depth: u8,
    pub root: u64,
}

/// Initiator → responder: "my roots of these ranges (that we share) are ...". The
/// sweep's first step, batched: at most [`MAX_ROOTS_PER_MESSAGE`] entries. Only the
/// ranges the reply names differing go on to a per-range [`Exchange`] descent.
///
/// `id` names the initiator's root round, `part` the message within it (a round
/// covering `s` shared ranges has `⌈s / 256⌉` parts), so replies are matched to parts
/// and duplicates or late replies are recognised.
///
/// [`MAX_ROOTS_PER_MESSAGE`]: super::config::MAX_ROOTS_PER_MESSAGE
/// [`Exchange`]: super::Exchange
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootBatch {
    pub id: ExchangeId,
    pub part: u32,
    pub roots: Vec<RootEntry>,
}

/// Responder → initiator: offsets into the batch's `roots`, strictly ascending.
/// `differing`: the responder has the range at the same depth with another root.
/// `unknown`: it has no tree for the range at that depth or does not share it with the
/// sender (other layout or Merkle config): no descent can help, so the initiator skips
/// it. Offsets in neither list matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootBatchReply {
    pub id: ExchangeId,
    pub part: u32,
    pub differing: Vec<u16>,
    pub unknown: Vec<u16>,
}

/// Chosen by the initiator (counter or random), echoed in every response.
pub type ExchangeId = u64;

/// Initiator → responder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExchangeRequest {
    /// "My root is `hash`": answered by [`ExchangeResponse::Root`].
    Root {
        id: ExchangeId,
        range: TokenRange,
        depth: u8,
        hash: u64,
    },
    /// "My hashes of these nodes of `level` are ...": answered by
    /// [`ExchangeResponse::Level`] listing which of them differ. `part` numbers the
    /// messages of one level so responses can be matched.
    Level {
        id: ExchangeId,
        range: TokenRange,
        depth: u8,
        level: u8,
        part: u32,
        runs: Vec<HashRun>,
    },
}

/// Hashes of consecutive nodes `index_start, index_start + 1, ...` of one level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashRun {
    pub index_start: u64,
    pub hashes: Vec<u64>,
}

/// Responder → initiator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExchangeResponse {
    Root {
        id: ExchangeId,
        range: TokenRange,
        equal: bool,
    },
    /// Which of the request's hashes differ from the responder's: offsets into the
    /// request's hashes concatenated run after run, strictly ascending.
    Level {
        id: ExchangeId,
        range: TokenRange,
        level: u8,
        part: u32,
        differing: Vec<u16>,
    },
    /// The responder cannot compare (no such tree, other depth, malformed request).
    Rejected {
        id: ExchangeId,
        range: TokenRange,
        reason: RejectReason,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    /// The responder has no tree for the range (layouts differ, or it is rebuilding).
    UnknownRange,
    /// Configs differ: the responder's tree for this range has depth `ours`.
    DepthMismatch { ours: u8 },
    /// The request broke a limit or a bound.
    Malformed,
}

impl ExchangeRequest {
    pub fn id(&self) -> ExchangeId {
        match self {
            ExchangeRequest::Root { id, .. } | ExchangeRequest::Level { id, .. } => *id,
        }
    }

    pub fn range(&self) -> TokenRange {
        match self {
            ExchangeRequest::Root { range, .. } | ExchangeRequest::Level { range, .. } => *range,
        }
    }

    /// Number of hashes carried.
    pub fn hash_count(&self) -> usize {
        match self {
            ExchangeRequest::Root { .. } => 1,
            ExchangeRequest::Level { runs, .. } => runs.iter().map(|run| run.hashes.len()).sum(),
        }
    }

    /// The response telling the initiator why this request was not answered.
    pub fn rejection(&self, reason: RejectReason) -> ExchangeResponse {
        ExchangeResponse::Rejected {
            id: self.id(),
            range: self.range(),
            reason,
        }
    }
}

impl ExchangeResponse {
    pub fn id(&self) -> ExchangeId {
        match self {
            ExchangeResponse::Root { id, .. }
            | ExchangeResponse::Level { id, .. }
            | ExchangeResponse::Rejected { id, .. } => *id,
        }
    }

    pub fn range(&self) -> TokenRange {
        match self {
            ExchangeResponse::Root { range, .. }
            | ExchangeResponse::Level { range, .. }
            | ExchangeResponse::Rejected { range, .. } => *range,
        }
    }
}

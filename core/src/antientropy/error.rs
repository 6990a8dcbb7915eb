//! What can go wrong building trees or running an exchange. Every malformed or
//! unexpected message maps to one of these; nothing in this module panics on input.

use thiserror::Error;

use crate::ring::TokenRange;

use super::message::{ExchangeId, RejectReason};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AntiEntropyError {
    #[error("tree depth {depth} exceeds MAX_DEPTH")]
    DepthTooLarge { depth: u8 },
    #[error("key position {position:#018x} is outside the tree's range {range}")]
    KeyOutsideRange { position: u64, range: TokenRange },
    #[error("no tree for range {0}")]
    UnknownRange(TokenRange),
    #[error("tree depth mismatch: ours {ours}, theirs {theirs}")]
    DepthMismatch { ours: u8, theirs: u8 },
    #[error("level {level} beyond tree depth {depth}")]
    LevelOutOfRange { level: u8, depth: u8 },
    #[error("message carries {count} hashes (limit MAX_HASHES_PER_MESSAGE)")]
    TooManyHashes { count: usize },
    #[error("run of {len} hashes at index {index_start} is outside level {level}")]
    RunOutOfBounds {
        level: u8,
        index_start: u64,
        len: usize,
    },
    #[error("response belongs to exchange {got}, not {expected}")]
    WrongExchange {
        expected: ExchangeId,
        got: ExchangeId,
    },
    #[error("response for range {got}, exchange is over {expected}")]
    WrongRange {
        expected: TokenRange,
        got: TokenRange,
    },
    #[error("tree passed to the exchange is not over range {range} at depth {depth}")]
    TreeMismatch { range: TokenRange, depth: u8 },
    #[error("response for level {level} part {part} that was never requested")]
    UnrequestedPart { level: u8, part: u32 },
    #[error("differing offsets must be strictly ascending and below {sent}")]
    BadOffsets { sent: usize },
    #[error("peer rejected the exchange: {0:?}")]
    Rejected(RejectReason),
}

impl AntiEntropyError {
    /// The reason a responder reports to the initiator for this error.
    pub fn reject_reason(&self) -> RejectReason {
        match self {
            AntiEntropyError::UnknownRange(_) => RejectReason::UnknownRange,
            AntiEntropyError::DepthMismatch { ours, .. } => {
                RejectReason::DepthMismatch { ours: *ours }
            }
            AntiEntropyError::Rejected(reason) => reason.clone(),
            _ => RejectReason::Malformed,
        }
    }
}

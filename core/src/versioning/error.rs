//! Why a versioned write was refused.

use thiserror::Error;

use crate::ring::NodeId;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VersionError {
    /// The coordinator's counter for this key would pass `u64::MAX`: only reachable
    /// with a forged causal context, so the write is refused rather than wrapped (a
    /// wrapped counter would reuse dots and lose writes).
    #[error("dot counter of node {0} exhausted")]
    CounterExhausted(NodeId),
}

//! Why a layout change was refused.

use thiserror::Error;

use super::node::{NodeId, ProcessId};

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LayoutError {
    #[error("replication factor {0} out of range (must be at least 1)")]
    ReplicasOutOfRange(u64),
    #[error("vnodes per capacity unit {0} out of range (1..=TOKENS_PER_NODE_MAX)")]
    VnodesOutOfRange(u32),
    #[error("node {0} listed twice")]
    DuplicateNode(NodeId),
    #[error("node {node} would get {tokens} tokens (limit TOKENS_PER_NODE_MAX)")]
    TooManyTokens { node: NodeId, tokens: u64 },
    #[error("ring would have {tokens} tokens (limit TOKENS_TOTAL_MAX)")]
    RingTooLarge { tokens: u64 },
    #[error("layout would have more than NODES_MAX members")]
    TooManyNodes,
    #[error("layout version counter exhausted")]
    VersionExhausted,
    /// A process runs on one machine, so its shards share one zone; placement relies on
    /// it (a process's zone is any of its members').
    #[error("process {process} would span zones {first:?} ({first_member}) and {second:?} ({second_member}): the shards of a process share its zone")]
    ProcessSpansZones {
        process: ProcessId,
        first: String,
        first_member: NodeId,
        second: String,
        second_member: NodeId,
    },
}

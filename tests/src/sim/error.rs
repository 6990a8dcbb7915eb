//! Errors of a simulation run (as opposed to findings: violations are results, not errors).

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SimError {
    /// A node could not be booted from its disk (e.g. recovery after a crash failed).
    #[error("node {node} failed to open at {time_ms} ms: {reason}")]
    Open {
        node: usize,
        time_ms: u64,
        reason: String,
    },
    /// Reading a replica's disk to measure convergence failed.
    #[error("reading node {node}'s storage failed: {reason}")]
    Storage { node: usize, reason: String },
    /// More events than `SimConfig::events_max`: a livelock, or a far too large run.
    #[error("event budget of {0} exhausted")]
    EventBudget(u64),
    #[error("invalid simulation config: {0}")]
    Config(String),
}

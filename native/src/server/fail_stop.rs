//! Fail-stop after a storage failure.
//!
//! After a failed sync the durable content of the store is unknown (the kernel may have
//! dropped the dirty pages it could not write; PostgreSQL's fsync-gate), while the node's
//! memory — the engine's buffered writes, the Paxos acceptor's vote, the tag lease, the
//! membership's `synced` mark — still reflects the writes that were lost. Anything the
//! node says from then on may rest on those writes: a resent `LayoutAccept` answered
//! "accepted" from memory, a tag issued under a lease that never became durable, a
//! `Read` or a resent `Write` answered from the buffered value. A sync is never retried
//! (a retry can "succeed" after the data was dropped). So the first failure is sticky:
//! from then on no peer message and no successful client reply leaves the process, new
//! client requests are refused with `Unavailable`, and the node reports itself failed
//! on `/health` and `/status` until it is restarted, which recovers from what is
//! durable.
//!
//! Invariant: `trip` happens before the release of every turn that ran after the
//! failure could have affected it (the committer trips before it looks at the next
//! turn; the node thread trips inside the failing write, before it queues the turn).

use std::sync::OnceLock;

use ringkv_core::node::ClientError;
use ringkv_core::storage::StorageError;
use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct FailStop {
    /// The first storage failure; never cleared.
    error: OnceLock<String>,
    /// Wakes the node thread so it answers what it holds without waiting for an input.
    tripped: Notify,
}

impl FailStop {
    /// Records `error` as the node's storage failure (the first one wins).
    pub fn trip(&self, error: &StorageError) {
        if self.error.set(error.to_string()).is_ok() {
            tracing::error!(%error, "storage failed: this node stops answering (fail-stop) until restarted");
            self.tripped.notify_one();
        }
    }

    /// The storage failure, once there was one.
    pub fn error(&self) -> Option<&str> {
        self.error.get().map(String::as_str)
    }

    pub fn is_tripped(&self) -> bool {
        self.error.get().is_some()
    }

    /// Resolves once `trip` has run (at once if it already has).
    pub async fn wait(&self) {
        if !self.is_tripped() {
            self.tripped.notified().await;
        }
    }

    /// The answer to a request this node will not run: it did not take effect here.
    pub fn refusal(&self) -> ClientError {
        ClientError::Unavailable {
            reason: format!(
                "storage failed on this node ({}); it serves nothing until restarted",
                self.error().unwrap_or("unknown error")
            ),
        }
    }

    /// The answer to a request the node took before the failure and whose own answer
    /// is withheld: a write may have taken effect (on peers, through messages sent
    /// earlier), a read changed nothing.
    pub fn lost(&self, read_only: bool) -> ClientError {
        let error = self.error().unwrap_or("unknown error");
        if read_only {
            ClientError::Unavailable {
                reason: format!("storage failed on this node ({error}) before it answered"),
            }
        } else {
            ClientError::Indeterminate {
                reason: format!("storage failed on this node ({error}) before it answered"),
            }
        }
    }
}

/// Whether an engine error means the engine can no longer be trusted (every such error
/// stops the engines we ship); refusals of bad input leave it usable.
pub fn is_failure(error: &StorageError) -> bool {
    !matches!(
        error,
        StorageError::TooLarge { .. } | StorageError::InvalidOptions(_)
    )
}

#[cfg(test)]
#[path = "fail_stop_tests.rs"]
mod tests;

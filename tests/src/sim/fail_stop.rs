//! The native host's fail-stop rule (`native/src/server/fail_stop.rs`), for a simulated
//! node: once its engine has failed (a sync returned EIO), nothing the node produced
//! in that call or later leaves — its memory may hold a vote, a tag lease or a value the
//! disk lost. Requests it had taken are answered as the native node thread answers them
//! (`Indeterminate` for writes, `Unavailable` for reads), later ones are refused
//! (`Unavailable`), and peer messages and timers are dropped, until the fault schedule
//! crashes and restarts the node on what its disk kept.

use std::collections::{BTreeMap, VecDeque};

use super::api::{Reply, RequestId};

#[derive(Debug, Default)]
pub struct FailStop {
    failed: bool,
    /// Client requests taken and not answered yet: whether each is a read.
    pending: BTreeMap<RequestId, bool>,
    /// Answers due after the failure, in order.
    answers: VecDeque<(RequestId, Reply)>,
}

impl FailStop {
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// The node took request `id` (`read_only`: a get).
    pub fn took(&mut self, id: RequestId, read_only: bool) {
        self.pending.insert(id, read_only);
    }

    /// The node answered `id` (before any failure).
    pub fn answered(&mut self, id: RequestId) {
        self.pending.remove(&id);
    }

    /// A request that reached the node after it failed: it did not take effect.
    pub fn refuse(&mut self, id: RequestId) {
        self.answers.push_back((id, Reply::Unavailable));
    }

    /// The engine failed: answers every request taken and not answered.
    pub fn trip(&mut self) {
        self.failed = true;
        for (id, read_only) in std::mem::take(&mut self.pending) {
            let reply = if read_only {
                Reply::Unavailable
            } else {
                Reply::Indeterminate
            };
            self.answers.push_back((id, reply));
        }
    }

    pub fn next_answer(&mut self) -> Option<(RequestId, Reply)> {
        self.answers.pop_front()
    }
}

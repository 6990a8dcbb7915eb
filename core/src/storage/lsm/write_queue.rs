//! Group commit. Writers queue up; the writer at the front becomes the leader, commits
//! a group of queued batches with one log write and at most one sync, and hands every
//! member its outcome. While a leader syncs, new writers queue behind it and the next
//! leader takes them all at once, which is where concurrent durable writes gain.
//!
//! On a single-threaded host (wasm) the queue never holds more than the caller, so no
//! one ever waits on the condition variable.
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::storage::error::{Result, StorageError};
use crate::storage::{Lsn, WriteBatch};

pub struct Waiter {
    pub batch: WriteBatch,
    pub sync: bool,
    /// Freeze the memtable (and sync the log) even if it is not full.
    pub rotate: bool,
    outcome: Mutex<Option<Result<Lsn>>>,
}

impl Waiter {
    pub fn new(batch: WriteBatch, sync: bool, rotate: bool) -> Self {
        Self {
            batch,
            sync,
            rotate,
            outcome: Mutex::new(None),
        }
    }

    fn take_outcome(&self) -> Option<Result<Lsn>> {
        lock(&self.outcome).take()
    }

    fn set_outcome(&self, outcome: Result<Lsn>) {
        *lock(&self.outcome) = Some(outcome);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Default)]
pub struct WriteQueue {
    waiters: Mutex<VecDeque<Arc<Waiter>>>,
    turn: Condvar,
}

impl WriteQueue {
    /// Queues `waiter` and returns its outcome, committing it (and others) through
    /// `commit` if this thread becomes the leader. `commit` receives the group in queue
    /// order and returns one outcome per member.
    pub fn submit(
        &self,
        waiter: Waiter,
        group_bytes_max: usize,
        commit: impl FnOnce(&[Arc<Waiter>]) -> Vec<Result<Lsn>>,
    ) -> Result<Lsn> {
        let me = Arc::new(waiter);
        let mut queue = lock(&self.waiters);
        queue.push_back(me.clone());
        loop {
            if let Some(outcome) = me.take_outcome() {
                return outcome;
            }
            if queue.front().is_some_and(|front| Arc::ptr_eq(front, &me)) {
                break;
            }
            queue = self.turn.wait(queue).unwrap_or_else(|p| p.into_inner());
        }

        let mut group: Vec<Arc<Waiter>> = Vec::new();
        let mut group_bytes = 0usize;
        for waiter in queue.iter() {
            let alone = waiter.rotate || group.first().is_some_and(|w| w.rotate);
            if !group.is_empty()
                && (alone || group_bytes + waiter.batch.size_bytes() > group_bytes_max)
            {
                break;
            }
            group_bytes += waiter.batch.size_bytes();
            group.push(waiter.clone());
        }
        // Members stay queued (so later writers wait behind them) while the leader
        // works without the queue lock.
        drop(queue);
        let mut outcomes = commit(&group).into_iter();

        let mut queue = lock(&self.waiters);
        for member in &group {
            let front = queue.pop_front();
            debug_assert!(front.is_some_and(|f| Arc::ptr_eq(&f, member)));
            // Every member must leave the queue with an outcome, or its thread waits forever.
            member.set_outcome(outcomes.next().unwrap_or_else(|| {
                Err(StorageError::Failed {
                    cause: "group commit lost a member's outcome".into(),
                })
            }));
        }
        self.turn.notify_all();
        drop(queue);
        me.take_outcome().unwrap_or_else(|| {
            Err(StorageError::Failed {
                cause: "group commit lost the leader's outcome".into(),
            })
        })
    }
}

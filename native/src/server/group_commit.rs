//! Group commit across everything the node thread handles in one turn.
//!
//! The core writes replica records with `WriteOptions::DURABLE` and acknowledges right
//! after the write returns; run as is, every write costs one fsync on the node thread,
//! one after another. This engine wrapper turns those durable writes into buffered
//! ones and remembers that a sync is owed; **every** output of the turn (peer messages
//! and client replies) is held back until one sync has made all of them durable; the
//! committer thread (`committer.rs`) does that sync and the release while the node
//! thread runs the next turn. Nothing that depends on an unsynced write leaves
//! the process before that write is durable, which is the contract the core relies on
//! (the same hand-off as the browser host's: buffered writes, then one commit per
//! event-loop turn before anything is released; ARCHITECTURE.md, "Durability hand-off").
//!
//! Engines guarantee that a durable image holding batch `n` holds every batch before it,
//! so one sync after the turn covers every buffered batch of the turn (an empty durable
//! batch syncs the LSM log; for redb an `Immediate` commit makes earlier `None` commits
//! durable).
//!
//! Readers on other threads (export's key listing, DBSIZE) may see writes not yet
//! synced; they only list keys or count, and export reads values through the node.
//!
//! A failed sync (or any write that stops the engine) trips the node's fail-stop
//! (`fail_stop.rs`): the wrapper refuses every later call, so nothing read from memory
//! that the disk may have lost reaches a reader, and the committer withholds every
//! turn's outputs from then on.

use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ringkv_core::storage::{
    Engine, EngineStats, Lsn, Result, StorageError, WriteBatch, WriteOptions,
};

use super::fail_stop::{is_failure, FailStop};

pub struct GroupCommit {
    inner: Arc<dyn Engine>,
    /// A durable write was buffered since the last sync.
    owed: AtomicBool,
    /// Set by the first failed write or sync; from then on this wrapper refuses every
    /// call itself, whatever the inner engine would do (redb, for one, keeps serving
    /// reads of commits that never became durable), and never syncs again.
    fail_stop: Arc<FailStop>,
}

impl GroupCommit {
    pub fn new(inner: Arc<dyn Engine>) -> Self {
        GroupCommit {
            inner,
            owed: AtomicBool::new(false),
            fail_stop: Arc::new(FailStop::default()),
        }
    }

    /// The node's storage failure state, shared with the node thread, the committer
    /// and the HTTP endpoints.
    pub fn fail_stop(&self) -> &Arc<FailStop> {
        &self.fail_stop
    }

    /// Whether a durable write waits for a sync.
    pub fn is_owed(&self) -> bool {
        self.owed.load(Ordering::Acquire)
    }

    /// Whether a durable write was buffered since the last call. Only the node thread
    /// calls it (at the end of each turn, so the flag belongs to that turn); the
    /// committer syncs on the turn's copy and never touches the flag.
    pub fn take_owed(&self) -> bool {
        self.owed.swap(false, Ordering::AcqRel)
    }

    /// Makes every write so far durable (one fsync). After the first failure this fails
    /// without touching the disk: a failed fsync is never retried.
    pub fn sync_now(&self) -> Result<()> {
        self.refuse_if_failed()?;
        let result = self
            .inner
            .write(&WriteBatch::new(), WriteOptions::DURABLE)
            .map(|_| ());
        self.watch(result)
    }

    /// Syncs if a durable write is owed; returns whether a sync ran. For use before
    /// the node thread starts (it owns `take_owed` afterwards).
    pub fn sync(&self) -> Result<bool> {
        if self.take_owed() {
            self.sync_now()?;
            return Ok(true);
        }
        Ok(false)
    }

    fn refuse_if_failed(&self) -> Result<()> {
        match self.fail_stop.error() {
            Some(cause) => Err(StorageError::Failed {
                cause: cause.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// Trips the fail-stop on an error that stopped the engine.
    fn watch<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(error) = &result {
            if is_failure(error) {
                self.fail_stop.trip(error);
            }
        }
        result
    }

    /// Reads fail only if the engine had already stopped: a read error loses nothing.
    fn watch_read<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(error @ StorageError::Failed { .. }) = &result {
            self.fail_stop.trip(error);
        }
        result
    }
}

impl Engine for GroupCommit {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.refuse_if_failed()?;
        self.watch_read(self.inner.get(key))
    }

    fn write(&self, batch: &WriteBatch, options: WriteOptions) -> Result<Lsn> {
        self.refuse_if_failed()?;
        if options.sync {
            let lsn = self.watch(self.inner.write(batch, WriteOptions::BUFFERED))?;
            self.owed.store(true, Ordering::Release);
            Ok(lsn)
        } else {
            self.watch(self.inner.write(batch, options))
        }
    }

    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.refuse_if_failed()?;
        self.watch_read(self.inner.scan(start, end, limit))
    }

    fn flush(&self) -> Result<()> {
        self.refuse_if_failed()?;
        self.watch(self.inner.flush())
    }

    fn compact(&self) -> Result<()> {
        self.refuse_if_failed()?;
        self.watch(self.inner.compact())
    }

    fn maintain(&self, budget_bytes: u64) -> Result<bool> {
        self.refuse_if_failed()?;
        self.watch(self.inner.maintain(budget_bytes))
    }

    fn stats(&self) -> EngineStats {
        self.inner.stats()
    }
}

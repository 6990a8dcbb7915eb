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

use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ringkv_core::storage::{Engine, EngineStats, Lsn, Result, WriteBatch, WriteOptions};

pub struct GroupCommit {
    inner: Arc<dyn Engine>,
    /// A durable write was buffered since the last sync.
    owed: AtomicBool,
}

impl GroupCommit {
    pub fn new(inner: Arc<dyn Engine>) -> Self {
        GroupCommit {
            inner,
            owed: AtomicBool::new(false),
        }
    }

    /// Makes every write so far durable (one fsync), if any durable write is owed.
    /// After an error the engine has failed (it never retries a sync); the caller must
    /// not release what the turn produced.
    /// Whether a durable write waits for a sync.
    pub fn is_owed(&self) -> bool {
        self.owed.load(Ordering::Acquire)
    }

    /// Whether a durable write was buffered since the last call (the node thread asks
    /// at the end of each turn; the committer then syncs).
    pub fn take_owed(&self) -> bool {
        self.owed.swap(false, Ordering::AcqRel)
    }

    /// Makes every write so far durable (one fsync).
    pub fn sync_now(&self) -> Result<()> {
        self.inner
            .write(&WriteBatch::new(), WriteOptions::DURABLE)
            .map(|_| ())
    }

    /// Syncs if a durable write is owed; returns whether a sync ran.
    pub fn sync(&self) -> Result<bool> {
        if self.take_owed() {
            self.sync_now()?;
            return Ok(true);
        }
        Ok(false)
    }
}

impl Engine for GroupCommit {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get(key)
    }

    fn write(&self, batch: &WriteBatch, options: WriteOptions) -> Result<Lsn> {
        if options.sync {
            let lsn = self.inner.write(batch, WriteOptions::BUFFERED)?;
            self.owed.store(true, Ordering::Release);
            Ok(lsn)
        } else {
            self.inner.write(batch, options)
        }
    }

    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.scan(start, end, limit)
    }

    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    fn compact(&self) -> Result<()> {
        self.inner.compact()
    }

    fn maintain(&self, budget_bytes: u64) -> Result<bool> {
        self.inner.maintain(budget_bytes)
    }

    fn stats(&self) -> EngineStats {
        self.inner.stats()
    }
}

//! fjall 3 (LSM) with default settings: one keyspace, LZ4, 32 MiB block cache,
//! `min(cores, 4)` background workers.
//!
//! Durability: YCSB puts are `Keyspace::insert` (fjall's default writes the journal
//! entry to the OS, no sync); durable puts are `insert` followed by
//! `Database::persist(PersistMode::SyncData)`, i.e. an fdatasync of the journal, the same
//! sync the other engines use. With concurrent writers a persist also covers the
//! inserts other threads appended before it.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use super::BenchEngine;

pub struct Fjall {
    db: Database,
    keyspace: Keyspace,
}

impl Fjall {
    pub fn open(dir: &Path) -> Result<Self> {
        let db = Database::builder(dir.join("fjall")).open()?;
        let keyspace = db.keyspace("ycsb", KeyspaceCreateOptions::default)?;
        Ok(Self { db, keyspace })
    }
}

impl BenchEngine for Fjall {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.keyspace.get(key)?.map(|v| v.to_vec()))
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.keyspace.insert(key, value)?;
        Ok(())
    }

    fn put_durable(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.keyspace.insert(key, value)?;
        self.db.persist(PersistMode::SyncData)?;
        Ok(())
    }

    fn scan(&self, start: &[u8], limit: usize) -> Result<usize> {
        let mut n = 0;
        for guard in self.keyspace.range(start..).take(limit) {
            let (k, v) = guard.into_inner()?;
            std::hint::black_box((k.len(), v.len()));
            n += 1;
        }
        Ok(n)
    }

    /// Syncs the journal, flushes the memtable to a table and waits until fjall's
    /// workers report no queued flush and no running compaction for a few polls.
    fn settle(&self) -> Result<()> {
        self.db.persist(PersistMode::SyncAll)?;
        self.keyspace.rotate_memtable_and_wait()?;
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut idle_polls = 0;
        while idle_polls < 5 {
            if Instant::now() > deadline {
                bail!("fjall background work did not settle within 120 s");
            }
            std::thread::sleep(Duration::from_millis(20));
            if self.db.outstanding_flushes() == 0 && self.db.active_compactions() == 0 {
                idle_polls += 1;
            } else {
                idle_polls = 0;
            }
        }
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.db.persist(PersistMode::SyncAll)?;
        drop(self);
        Ok(())
    }
}

//! ringkv's redb engine on a plain file (`RedbEngine::open_path`).
//!
//! Durability: YCSB puts commit with `WriteOptions { sync: false }` (redb
//! `Durability::None`); durable puts with `sync: true` (redb `Durability::Immediate`,
//! one fdatasync per commit).

use std::path::Path;

use anyhow::Result;
use ringkv_core::storage::redb_engine::RedbEngine;
use ringkv_core::storage::Engine;

use super::{core_bytes, core_put, core_scan, BenchEngine};

pub struct RingkvRedb {
    engine: RedbEngine,
}

impl RingkvRedb {
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(Self {
            engine: RedbEngine::open_path(&dir.join("ringkv.redb"))?,
        })
    }
}

impl BenchEngine for RingkvRedb {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.engine.get(key)?)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        core_put(&self.engine, key, value, false)
    }

    fn put_durable(&self, key: &[u8], value: &[u8]) -> Result<()> {
        core_put(&self.engine, key, value, true)
    }

    fn scan(&self, start: &[u8], limit: usize) -> Result<usize> {
        core_scan(&self.engine, start, limit)
    }

    fn settle(&self) -> Result<()> {
        self.engine.flush()?;
        Ok(())
    }

    fn engine_bytes(&self) -> Option<(u64, u64)> {
        core_bytes(&self.engine)
    }

    fn close(self: Box<Self>) -> Result<()> {
        // Dropping closes redb, which makes any pending non-durable commit durable.
        self.engine.flush()?;
        drop(self);
        Ok(())
    }
}

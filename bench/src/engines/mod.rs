//! The engines under test, behind one small interface the workloads drive.

pub mod fjall;
pub mod redb;
pub mod ringkv_lsm;
pub mod ringkv_redb;

use std::path::Path;

use anyhow::{bail, Result};
use ringkv_core::storage::{Engine, WriteBatch, WriteOptions};

/// Every engine name the bench knows, in report order.
pub const ALL: [&str; 4] = ["ringkv-lsm", "ringkv-redb", "redb", "fjall"];

pub fn available(name: &str) -> bool {
    ALL.contains(&name)
}

/// What a workload needs from an engine. All methods take `&self` so the durable phase
/// can share one engine among writer threads.
pub trait BenchEngine: Send + Sync {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// A put without a per-operation sync (the YCSB phases).
    fn put(&self, key: &[u8], value: &[u8]) -> Result<()>;
    /// A put that is durable when it returns.
    fn put_durable(&self, key: &[u8], value: &[u8]) -> Result<()>;
    /// Reads up to `limit` entries from `start` on; returns how many it read.
    fn scan(&self, start: &[u8], limit: usize) -> Result<usize>;
    /// Makes everything durable and lets background work finish, so the directory size
    /// is the engine's steady-state space.
    fn settle(&self) -> Result<()>;
    /// (user bytes, store bytes) as the engine itself counts them, if it does.
    fn engine_bytes(&self) -> Option<(u64, u64)> {
        None
    }
    /// Stops background threads and closes; errors here are reported, not ignored.
    fn close(self: Box<Self>) -> Result<()>;
}

/// Opens engine `name` with its data under `dir` (created by the caller).
pub fn open(name: &str, dir: &Path) -> Result<Box<dyn BenchEngine>> {
    Ok(match name {
        "ringkv-lsm" => Box::new(ringkv_lsm::RingkvLsm::open(dir)?),
        "ringkv-redb" => Box::new(ringkv_redb::RingkvRedb::open(dir)?),
        "redb" => Box::new(redb::RawRedb::open(dir)?),
        "fjall" => Box::new(fjall::Fjall::open(dir)?),
        other => bail!("engine {other} is not available in this build"),
    })
}

/// The shared part of the adapters for our own engines, which speak [`Engine`].
pub fn core_put(engine: &dyn Engine, key: &[u8], value: &[u8], sync: bool) -> Result<()> {
    let mut batch = WriteBatch::new();
    batch.put(key, value);
    engine.write(&batch, WriteOptions { sync })?;
    Ok(())
}

pub fn core_scan(engine: &dyn Engine, start: &[u8], limit: usize) -> Result<usize> {
    use std::ops::Bound;
    Ok(engine
        .scan(Bound::Included(start), Bound::Unbounded, limit)?
        .len())
}

pub fn core_bytes(engine: &dyn Engine) -> Option<(u64, u64)> {
    let stats = engine.stats();
    Some((stats.user_bytes_written, stats.store_bytes_written))
}

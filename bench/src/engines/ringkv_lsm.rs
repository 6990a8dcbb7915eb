//! ringkv's LSM engine over a `FileStore` directory.
//!
//! The engine is sans-IO and runs no threads of its own: as a native host does, this
//! adapter runs its background work on one maintenance thread that loops
//! `maintain(4 MiB)` and sleeps 1 ms whenever it reports nothing due.
//!
//! Durability: YCSB puts are `WriteOptions { sync: false }`; durable puts are
//! `WriteOptions { sync: true }` (commit log synced before `write` returns; concurrent
//! durable writers share one sync).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, Result};
use ringkv_core::storage::blockstore::FileStore;
use ringkv_core::storage::lsm::{LsmEngine, LsmOptions};
use ringkv_core::storage::{BlockStore, Engine};

use super::{core_bytes, core_put, core_scan, BenchEngine};

/// Background work per `maintain` call, as the host in the issue runs it.
const MAINTAIN_BUDGET_BYTES: u64 = 4 << 20;
const IDLE_SLEEP: Duration = Duration::from_millis(1);

pub struct RingkvLsm {
    engine: Arc<LsmEngine>,
    stop: Arc<AtomicBool>,
    maintenance: Option<JoinHandle<Result<()>>>,
}

impl RingkvLsm {
    pub fn open(dir: &Path) -> Result<Self> {
        let store: Arc<dyn BlockStore> = Arc::new(FileStore::open(dir.join("lsm"))?);
        let options = LsmOptions {
            background_maintenance: true,
            ..LsmOptions::default()
        };
        let engine = Arc::new(LsmEngine::open(store, options)?);
        let stop = Arc::new(AtomicBool::new(false));
        let maintenance = {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("lsm-maintain".into())
                .spawn(move || maintain_loop(&engine, &stop))?
        };
        Ok(Self {
            engine,
            stop,
            maintenance: Some(maintenance),
        })
    }

    fn stop_maintenance(&mut self) -> Result<()> {
        self.stop.store(true, Ordering::Release);
        match self.maintenance.take() {
            Some(handle) => handle
                .join()
                .map_err(|_| anyhow!("lsm maintenance thread panicked"))?,
            None => Ok(()),
        }
    }
}

fn maintain_loop(engine: &LsmEngine, stop: &AtomicBool) -> Result<()> {
    while !stop.load(Ordering::Acquire) {
        match engine.maintain(MAINTAIN_BUDGET_BYTES) {
            Ok(true) => {}
            Ok(false) => std::thread::sleep(IDLE_SLEEP),
            Err(e) => {
                // The engine refuses further work after a failure; report it at close.
                eprintln!("ringkv-lsm: maintenance failed: {e}");
                return Err(e.into());
            }
        }
    }
    Ok(())
}

impl BenchEngine for RingkvLsm {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.engine.get(key)?)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        core_put(self.engine.as_ref(), key, value, false)
    }

    fn put_durable(&self, key: &[u8], value: &[u8]) -> Result<()> {
        core_put(self.engine.as_ref(), key, value, true)
    }

    fn scan(&self, start: &[u8], limit: usize) -> Result<usize> {
        core_scan(self.engine.as_ref(), start, limit)
    }

    /// Flushes the memtable and runs compaction until none is due (on this thread, while
    /// the maintenance thread may help).
    fn settle(&self) -> Result<()> {
        self.engine.flush()?;
        self.engine.compact()?;
        Ok(())
    }

    fn engine_bytes(&self) -> Option<(u64, u64)> {
        core_bytes(self.engine.as_ref())
    }

    fn close(mut self: Box<Self>) -> Result<()> {
        let stopped = self.stop_maintenance();
        self.engine.flush()?;
        stopped
    }
}

impl Drop for RingkvLsm {
    fn drop(&mut self) {
        // On an early error return the thread must still stop before the engine drops.
        self.stop.store(true, Ordering::Release);
        if let Some(handle) = self.maintenance.take() {
            let _ = handle.join();
        }
    }
}

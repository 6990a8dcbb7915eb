//! LSM flushes and compactions on a thread of their own, so that the node thread (which
//! runs the core and, through the engine, every write) never stops for one: a flush of
//! an 8 MiB memtable or a compaction step took ~10% of the node thread's time inline
//! (perf, 3 nodes under a pipelined SET load), and stalled every request queued behind
//! it for the duration.
//!
//! What must hold: writers still do the work themselves when the engine's bounds are
//! reached (`immutable_memtables_max`, `l0_stall_tables`), so a slow or stopped
//! maintenance thread means backpressure, never unbounded memory. A failed flush or
//! compaction goes through [`GroupCommit`](super::group_commit::GroupCommit), which
//! trips the node's fail-stop like a failed sync; the thread then ends.
//!
//! A memtable that holds writes but saw none for [`IDLE_FLUSH_MS`] is flushed: otherwise
//! a burst smaller than a memtable (e.g. the deletes of a tombstone purge) would sit in
//! memory and in the commit log until the next burst, and the space of what it deletes
//! would never come back (compaction works on tables only).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ringkv_core::storage::Engine;

/// Input bytes one compaction step merges before the thread checks for a stop (and a
/// fresh frozen memtable, which `maintain` flushes first).
const STEP_BUDGET_BYTES: u64 = 4 << 20;
/// How long the thread sleeps when there is nothing to do. A frozen memtable waits at
/// most this long; writers flush themselves once two are waiting.
const IDLE_SLEEP_MS: u64 = 10;
/// A memtable idle (no write) this long is flushed.
const IDLE_FLUSH_MS: u64 = 5_000;
/// How often the idle check reads the engine's counters.
const IDLE_CHECK_MS: u64 = 500;

pub struct Maintenance {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Maintenance {
    pub fn spawn(engine: Arc<dyn Engine>) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("ringkv-maintain".into())
                .spawn(move || run(engine.as_ref(), &stop))?
        };
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread after its current step (a bounded amount of work) and waits.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for Maintenance {
    fn drop(&mut self) {
        self.halt();
    }
}

fn run(engine: &dyn Engine, stop: &AtomicBool) {
    let mut idle = IdleFlush::default();
    while !stop.load(Ordering::Acquire) {
        let result = match engine.maintain(STEP_BUDGET_BYTES) {
            Ok(true) => Ok(()),
            Ok(false) => {
                std::thread::park_timeout(Duration::from_millis(IDLE_SLEEP_MS));
                idle.check(engine)
            }
            Err(error) => Err(error),
        };
        if let Err(error) = result {
            // The engine (and the node, through GroupCommit) has stopped; the node
            // reports why. Nothing more to do here.
            tracing::error!(%error, "maintenance stopped: the engine refused a flush or compaction");
            return;
        }
    }
}

/// When the engine last took a write, as seen by its byte counter.
struct IdleFlush {
    written_bytes: u64,
    since: Instant,
    checked: Instant,
}

impl Default for IdleFlush {
    fn default() -> Self {
        IdleFlush {
            written_bytes: 0,
            since: Instant::now(),
            checked: Instant::now(),
        }
    }
}

impl IdleFlush {
    fn check(&mut self, engine: &dyn Engine) -> ringkv_core::storage::Result<()> {
        if self.checked.elapsed() < Duration::from_millis(IDLE_CHECK_MS) {
            return Ok(());
        }
        self.checked = Instant::now();
        let stats = engine.stats();
        if stats.user_bytes_written != self.written_bytes {
            self.written_bytes = stats.user_bytes_written;
            self.since = Instant::now();
        } else if stats.unflushed_entries > 0
            && self.since.elapsed() >= Duration::from_millis(IDLE_FLUSH_MS)
        {
            engine.flush()?;
            self.since = Instant::now();
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ringkv_core::storage::blockstore::MemoryStore;
    use ringkv_core::storage::lsm::{LsmEngine, LsmOptions};
    use ringkv_core::storage::{WriteBatch, WriteOptions};
    use std::time::Instant;

    fn engine() -> Arc<LsmEngine> {
        let options = LsmOptions {
            background_maintenance: true,
            ..LsmOptions::tiny()
        };
        Arc::new(LsmEngine::open(Arc::new(MemoryStore::new()), options).unwrap())
    }

    /// Enough writes to freeze a tiny memtable, not enough to make writers help.
    fn freeze_one(engine: &LsmEngine) {
        for i in 0..40u32 {
            let mut batch = WriteBatch::new();
            batch.put(format!("key-{i:04}"), vec![7u8; 100]);
            engine.write(&batch, WriteOptions::DURABLE).unwrap();
        }
    }

    #[test]
    fn the_thread_flushes_what_writers_froze_and_stops_on_request() {
        let engine = engine();
        freeze_one(&engine);
        // Writers left the frozen memtable to the host: nothing flushed yet.
        assert_eq!(engine.stats().flushes, 0);
        let maintenance = Maintenance::spawn(engine.clone()).unwrap();
        let started = Instant::now();
        while engine.stats().flushes == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the maintenance thread never flushed the frozen memtable"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        maintenance.stop();
        let flushed = engine.stats().flushes;
        freeze_one(&engine);
        std::thread::sleep(Duration::from_millis(5 * IDLE_SLEEP_MS));
        assert_eq!(
            engine.stats().flushes,
            flushed,
            "a stopped thread does no more work"
        );
        for i in 0..40u32 {
            let key = format!("key-{i:04}");
            assert_eq!(engine.get(key.as_bytes()).unwrap(), Some(vec![7u8; 100]));
        }
    }
}

//! The redb engine: [`Engine`] on a redb B-tree, either in a plain file
//! ([`RedbEngine::open_path`], native) or on any [`BlockStore`] through an adapter that
//! turns redb's random writes into an append-only log ([`RedbEngine::open_store`]; works
//! on memory stores and wasm). Layout of keys, values and the adapter's log:
//! docs/format/redb.md.

#[cfg(not(target_arch = "wasm32"))]
mod counting;
mod store_backend;
#[cfg(test)]
mod tests;

use std::io;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use redb::{
    Builder, Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};

use super::WriteOptions;
use super::{BatchOp, BlockStore, Engine, EngineStats, Lsn, Result, StorageError, WriteBatch};
use store_backend::{LogImage, SnapshotPolicy};

/// User keys and values, byte-for-byte; redb orders `&[u8]` keys lexicographically,
/// which is the order [`Engine::scan`] promises.
const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("ringkv_data");
/// Engine metadata; holds [`LSN_KEY`].
const META: TableDefinition<&str, u64> = TableDefinition::new("ringkv_meta");
/// LSN of the last batch, written by every durable commit (a durable batch, `flush`, and
/// the final commit on drop). redb makes a durable commit persist every non-durable one
/// before it, so a recovered database holds exactly the batches up to the stored LSN.
/// Skipping the write on non-durable commits keeps them as cheap as plain redb commits.
const LSN_KEY: &str = "lsn";

/// redb's page cache for store-backed engines: the adapter already holds the whole file
/// in memory, so redb's cache only saves a copy, and a large one would double the memory.
const STORE_CACHE_BYTES: usize = 16 << 20;
/// The adapter rewrites its log as a snapshot once the log exceeds
/// `max(8 MiB, 2 × image size)`.
const SNAPSHOT_POLICY: SnapshotPolicy = SnapshotPolicy {
    min_bytes: 8 << 20,
    image_multiple: 2,
};

/// A redb database holding one table of user data.
///
/// redb commits every write transaction itself and has no background work, so
/// [`Engine::compact`] and [`Engine::maintain`] do nothing. Writers on several threads are
/// serialized by redb; each batch is one write transaction, and durable batches do not
/// share a sync (redb has no group commit).
pub struct RedbEngine {
    db: Database,
    backing: Backing,
    /// Name used in error messages: the path or the store file name.
    file: String,
    user_bytes_written: AtomicU64,
    /// Held across each write transaction, so LSN order is commit order (redb runs one
    /// write transaction at a time anyway, so this costs no concurrency).
    lsn: Mutex<LsnState>,
    /// Set when a commit fails: redb then refuses writes until reopened.
    failure: Mutex<Option<String>>,
}

#[derive(Debug, Default)]
struct LsnState {
    /// LSN of the last committed batch.
    last: Lsn,
    /// LSN stored in `ringkv_meta` by the last durable commit.
    persisted: Lsn,
}

enum Backing {
    #[cfg(not(target_arch = "wasm32"))]
    Path {
        path: std::path::PathBuf,
        counters: Arc<counting::FileCounters>,
    },
    Store(Arc<LogImage>),
}

impl std::fmt::Debug for RedbEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbEngine")
            .field("file", &self.file)
            .finish()
    }
}

impl RedbEngine {
    /// Opens (creating if absent) a redb file at `path` with redb's own file backend.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open_path(path: &std::path::Path) -> Result<Self> {
        let file_name = path.display().to_string();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| StorageError::io(&file_name, e))?;
        let counters = Arc::new(counting::FileCounters::default());
        let backend = redb::backends::FileBackend::new(file).map_err(|e| map_err(&file_name, e))?;
        let db = Builder::new()
            .create_with_backend(counting::CountingFileBackend::new(
                backend,
                counters.clone(),
            ))
            .map_err(|e| map_err(&file_name, e))?;
        let engine = Self::new(
            db,
            Backing::Path {
                path: path.to_path_buf(),
                counters,
            },
            file_name,
        );
        engine.init()?;
        Ok(engine)
    }

    /// Opens (creating if absent) a redb database kept in `file_name` of `store`.
    ///
    /// The adapter holds the whole database image in memory and persists it as a log of
    /// dirty pages, so a reopen (also after a crash) finds every write made durable.
    pub fn open_store(store: Arc<dyn BlockStore>, file_name: &str) -> Result<Self> {
        Self::open_store_with(store, file_name, SNAPSHOT_POLICY)
    }

    fn open_store_with(
        store: Arc<dyn BlockStore>,
        file_name: &str,
        policy: SnapshotPolicy,
    ) -> Result<Self> {
        let (image, fresh) = LogImage::open(store, file_name, policy)?;
        let db = Builder::new()
            .set_cache_size(STORE_CACHE_BYTES)
            .create_with_backend(image.backend())
            .map_err(|e| map_err(file_name, e))?;
        let engine = Self::new(db, Backing::Store(image.clone()), file_name.to_string());
        engine.init()?;
        if fresh {
            // Only now, with redb fully initialised, does the store file come to exist.
            image.attach()?;
        }
        Ok(engine)
    }

    fn new(db: Database, backing: Backing, file: String) -> Self {
        Self {
            db,
            backing,
            file,
            user_bytes_written: AtomicU64::new(0),
            lsn: Mutex::new(LsnState::default()),
            failure: Mutex::new(None),
        }
    }

    /// Creates the tables if new and loads the stored LSN.
    fn init(&self) -> Result<()> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let stored = {
            txn.open_table(DATA).map_err(|e| self.err(e))?;
            let meta = txn.open_table(META).map_err(|e| self.err(e))?;
            let stored = meta.get(LSN_KEY).map_err(|e| self.err(e))?;
            stored.map(|g| g.value()).unwrap_or(0)
        };
        self.commit(txn)?;
        *self.lock_lsn() = LsnState {
            last: stored,
            persisted: stored,
        };
        Ok(())
    }

    fn lock_lsn(&self) -> std::sync::MutexGuard<'_, LsnState> {
        // Fields are only assigned after a successful commit, so a panic leaves them valid.
        self.lsn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// LSN of the last committed batch (0 for a new database).
    pub fn last_lsn(&self) -> Result<Lsn> {
        Ok(self.lock_lsn().last)
    }

    /// A durable commit that also stores the current LSN; `flush` and drop use it.
    fn durable_commit(&self) -> Result<()> {
        self.check_failed()?;
        let mut lsn = self.lock_lsn();
        if lsn.persisted == lsn.last {
            // Every commit since the last durable one would have advanced `last`.
            return Ok(());
        }
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| self.err(e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            meta.insert(LSN_KEY, lsn.last).map_err(|e| self.err(e))?;
        }
        self.commit(txn)?;
        lsn.persisted = lsn.last;
        Ok(())
    }

    fn err(&self, e: impl Into<redb::Error>) -> StorageError {
        map_err(&self.file, e)
    }

    fn check_failed(&self) -> Result<()> {
        match &*self.failure.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(cause) => Err(StorageError::Failed {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Commits; a failed commit stops the engine (redb refuses writes until reopened and
    /// the commit may or may not have become durable).
    fn commit(&self, txn: redb::WriteTransaction) -> Result<()> {
        txn.commit().map_err(|e| {
            let err = self.err(e);
            *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(err.to_string());
            err
        })
    }
}

impl Engine for RedbEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(DATA).map_err(|e| self.err(e))?;
        let value = table.get(key).map_err(|e| self.err(e))?;
        Ok(value.map(|g| g.value().to_vec()))
    }

    fn write(&self, batch: &WriteBatch, options: WriteOptions) -> Result<Lsn> {
        batch.validate()?;
        self.check_failed()?;
        let mut lsn = self.lock_lsn();
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        // redb 4: `Immediate` syncs before commit returns; `None` is visible at once and
        // becomes durable with the next `Immediate` commit (or a clean close).
        let durability = if options.sync {
            Durability::Immediate
        } else {
            Durability::None
        };
        txn.set_durability(durability).map_err(|e| self.err(e))?;
        let next = lsn.last + 1;
        {
            let mut data = txn.open_table(DATA).map_err(|e| self.err(e))?;
            for op in batch.ops() {
                match op {
                    BatchOp::Put { key, value } => {
                        data.insert(key.as_slice(), value.as_slice())
                            .map_err(|e| self.err(e))?;
                    }
                    BatchOp::Delete { key } => {
                        data.remove(key.as_slice()).map_err(|e| self.err(e))?;
                    }
                }
            }
        }
        if options.sync {
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            meta.insert(LSN_KEY, next).map_err(|e| self.err(e))?;
        }
        self.commit(txn)?;
        lsn.last = next;
        if options.sync {
            lsn.persisted = next;
        }
        self.user_bytes_written
            .fetch_add(batch.size_bytes() as u64, Ordering::Relaxed);
        Ok(next)
    }

    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if limit == 0 || is_empty_range(start, end) {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(DATA).map_err(|e| self.err(e))?;
        let range = table
            .range::<&[u8]>((start, end))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(limit.min(1024));
        for entry in range.take(limit) {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// An `Immediate` commit storing the LSN: redb then syncs every earlier non-durable
    /// commit with it.
    fn flush(&self) -> Result<()> {
        self.durable_commit()
    }

    /// redb has no background work: pages are reused in place at commit. (redb's own
    /// `Database::compact` shrinks the file but needs exclusive access; we do not run it.)
    fn compact(&self) -> Result<()> {
        Ok(())
    }

    /// Never has work to do; see [`RedbEngine::compact`].
    fn maintain(&self, _budget_bytes: u64) -> Result<bool> {
        Ok(false)
    }

    fn stats(&self) -> EngineStats {
        let entries = self
            .db
            .begin_read()
            .ok()
            .and_then(|txn| txn.open_table(DATA).ok().and_then(|t| t.len().ok()))
            .unwrap_or(0);
        let (store_bytes_written, space_used_bytes, syncs, snapshots) = match &self.backing {
            #[cfg(not(target_arch = "wasm32"))]
            Backing::Path { path, counters } => (
                counters.bytes_written.load(Ordering::Relaxed),
                std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
                counters.syncs.load(Ordering::Relaxed),
                0,
            ),
            Backing::Store(image) => (
                image.counters.store_bytes_written.load(Ordering::Relaxed),
                image.space_used_bytes(),
                image.counters.syncs.load(Ordering::Relaxed),
                image.counters.snapshots.load(Ordering::Relaxed),
            ),
        };
        EngineStats {
            user_bytes_written: self.user_bytes_written.load(Ordering::Relaxed),
            store_bytes_written,
            space_used_bytes,
            entries_approx: entries,
            tables: 1,
            levels: Vec::new(),
            flushes: 0,
            // Only the store adapter compacts: each rewrite of its log as a snapshot.
            compactions: snapshots,
            syncs,
            block_cache_bytes: self.db.cache_stats().used_bytes() as u64,
            unflushed_entries: 0,
        }
    }
}

impl Drop for RedbEngine {
    /// redb's close would make pending non-durable commits durable by itself, but without
    /// the LSN that goes with them; commit it first. Errors cannot be returned from drop:
    /// a failed commit leaves the file for the next open to recover from its last durable
    /// commit, LSN included.
    fn drop(&mut self) {
        if self.check_failed().is_ok() {
            let _ = self.durable_commit();
        }
    }
}

fn is_empty_range(start: Bound<&[u8]>, end: Bound<&[u8]>) -> bool {
    match (start, end) {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(e))
        | (Bound::Excluded(s), Bound::Included(e)) => s >= e,
        _ => false,
    }
}

/// redb's corruption reports become [`StorageError::Corruption`]; I/O errors stay I/O
/// errors (our adapter's own errors are unwrapped); the rest become [`StorageError::Redb`].
fn map_err(file: &str, e: impl Into<redb::Error>) -> StorageError {
    match e.into() {
        redb::Error::Corrupted(reason) => StorageError::corruption(file, 0, reason),
        redb::Error::Io(io) => from_io(file, io),
        other => StorageError::Redb(other.to_string()),
    }
}

fn from_io(file: &str, e: io::Error) -> StorageError {
    let ours = e.get_ref().is_some_and(|inner| inner.is::<StorageError>());
    if ours {
        if let Some(Ok(inner)) = e.into_inner().map(|b| b.downcast::<StorageError>()) {
            return *inner;
        }
        return StorageError::Redb(format!("{file}: lost adapter error"));
    }
    // redb reports a file that is not (or no longer) a redb database as InvalidData.
    if e.kind() == io::ErrorKind::InvalidData {
        return StorageError::corruption(file, 0, e);
    }
    StorageError::io(file, e)
}

use std::collections::HashSet;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use super::cache::BlockCache;
use super::commit_log::LogWriter;
use super::compaction::{self, CompactionJob};
use super::iter::{LevelIter, MemtableIter};
use super::manifest::{write_manifest, Manifest};
use super::memtable::{Found, Memtable};
use super::merge::{MergeIter, Source};
use super::meta::{log_file_name, table_file_name, TableMeta};
use super::options::LsmOptions;
use super::sstable::{TableReader, TableWriter};
use super::version::{TableHandle, Version};
use super::write_queue::{Waiter, WriteQueue};
use crate::storage::blockstore::{BlockFile, BlockStore};
use crate::storage::error::{Result, StorageError};
use crate::storage::{Engine, EngineStats, Lsn, WriteBatch, WriteOptions};

/// The log-structured merge engine.
///
/// Write path: a batch joins the group-commit queue; the leader appends the group to the
/// commit log, syncs once if any member asked for durability, then applies the group to
/// the memtable, so a batch becomes visible only once it is as durable as requested.
/// A full memtable is frozen behind a fresh log and flushed to an L0 table; leveled
/// compaction merges tables downward. Reads consult memtable, frozen memtables, L0
/// newest first, then one table per deeper level.
pub struct LsmEngine {
    pub(super) store: Arc<dyn BlockStore>,
    pub(super) options: LsmOptions,
    pub(super) cache: Arc<BlockCache>,
    pub(super) next_file_id: AtomicU64,
    pub(super) state: RwLock<Arc<ReadState>>,
    pub(super) queue: WriteQueue,
    pub(super) writer: Mutex<WriterState>,
    pub(super) maint: Mutex<MaintState>,
    pub(super) failure: Mutex<Option<String>>,
    pub(super) counters: Counters,
}

/// What a reader needs, swapped as a whole so readers never see a half-applied change.
#[derive(Debug)]
pub(super) struct ReadState {
    pub mem: Arc<Memtable>,
    /// Frozen memtables, newest first.
    pub imm: Vec<Arc<Memtable>>,
    pub version: Arc<Version>,
}

/// Owned by the group-commit leader.
pub(super) struct WriterState {
    pub log: LogWriter,
    pub next_lsn: Lsn,
}

/// Owned by whoever runs background work.
#[derive(Default)]
pub(super) struct MaintState {
    pub last_flushed_lsn: Lsn,
    pub job: Option<CompactionJob>,
    pub cursors: Vec<Vec<u8>>,
}

#[derive(Default)]
pub(super) struct Counters {
    pub user_bytes: AtomicU64,
    pub store_bytes: AtomicU64,
    pub flushes: AtomicU64,
    pub compactions: AtomicU64,
    pub syncs: AtomicU64,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LsmEngine {
    pub(super) fn read_state(&self) -> Arc<ReadState> {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the read state with `edit(current)`, atomically for readers.
    pub(super) fn edit_state(&self, edit: impl FnOnce(&ReadState) -> ReadState) {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        *state = Arc::new(edit(&state));
    }

    fn check_failed(&self) -> Result<()> {
        match &*lock(&self.failure) {
            Some(cause) => Err(StorageError::Failed {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Records the first failure; after it the in-memory state may disagree with what
    /// is durable, so every later call fails until the engine is reopened.
    pub(super) fn fail(&self, error: StorageError) -> StorageError {
        let mut failure = lock(&self.failure);
        if failure.is_none() {
            *failure = Some(error.to_string());
        }
        error
    }

    pub(super) fn guard<T>(&self, result: Result<T>) -> Result<T> {
        result.map_err(|e| self.fail(e))
    }

    pub(super) fn allocate_file_id(&self) -> u64 {
        self.next_file_id.fetch_add(1, Ordering::SeqCst)
    }

    pub(super) fn new_table_file(&self) -> Result<(u64, Arc<dyn BlockFile>)> {
        let id = self.allocate_file_id();
        Ok((id, self.store.create(&table_file_name(id))?))
    }

    pub(super) fn open_table(
        &self,
        meta: TableMeta,
        file: Arc<dyn BlockFile>,
    ) -> Result<Arc<TableHandle>> {
        let reader = TableReader::open(file, meta.table_id, self.cache.clone())?;
        Ok(Arc::new(TableHandle {
            meta,
            reader: Arc::new(reader),
        }))
    }

    /// The manifest describing `version` and the logs still needed by `state`.
    pub(super) fn manifest_for(
        &self,
        state: &ReadState,
        version: &Version,
        last_flushed_lsn: Lsn,
    ) -> Manifest {
        let oldest_log = state.imm.last().map_or(state.mem.log_id, |m| m.log_id);
        Manifest {
            format_version: super::manifest::MANIFEST_FORMAT_VERSION,
            next_file_id: self.next_file_id.load(Ordering::SeqCst),
            log_number: oldest_log,
            last_flushed_lsn,
            tables: version.metas(),
        }
    }

    pub(super) fn write_manifest(&self, manifest: &Manifest) -> Result<()> {
        let bytes = write_manifest(self.store.as_ref(), manifest)?;
        self.counters
            .store_bytes
            .fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Commits a group as its leader: one log write, at most one sync, then the
    /// memtable. Runs with the writer state locked; nothing else touches the log.
    fn commit_group(&self, group: &[Arc<Waiter>]) -> Vec<Result<Lsn>> {
        let result = self.guard(self.commit_group_inner(group));
        match result {
            Ok(lsns) => lsns.into_iter().map(Ok).collect(),
            Err(e) => {
                let cause = e.to_string();
                let mut outcomes = vec![Err(e)];
                outcomes.extend((1..group.len()).map(|_| {
                    Err(StorageError::Failed {
                        cause: cause.clone(),
                    })
                }));
                outcomes
            }
        }
    }

    fn commit_group_inner(&self, group: &[Arc<Waiter>]) -> Result<Vec<Lsn>> {
        self.check_failed()?;
        let mut writer = lock(&self.writer);
        let rotate = group.iter().any(|w| w.rotate);
        self.make_room(&mut writer, rotate)?;

        let mut lsns = Vec::with_capacity(group.len());
        let log_before = writer.log.written_bytes() + writer.log.buffered_bytes() as u64;
        for waiter in group.iter().filter(|w| !w.batch.is_empty()) {
            let lsn = writer.next_lsn;
            writer.log.append(lsn, &waiter.batch)?;
            writer.next_lsn += 1;
            lsns.push(lsn);
        }
        let log_after = writer.log.written_bytes() + writer.log.buffered_bytes() as u64;
        self.counters
            .store_bytes
            .fetch_add(log_after.saturating_sub(log_before), Ordering::Relaxed);
        let sync = group.iter().any(|w| w.sync || w.rotate);
        if sync || writer.log.buffered_bytes() >= self.options.log_buffer_bytes_max {
            writer.log.write_out()?;
        }
        if sync {
            writer.log.file().sync()?;
            self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        }

        // Only the leader rotates, so this memtable is the one the log feeds.
        let mem = self.read_state().mem.clone();
        let mut applied = lsns.iter();
        let mut outcomes = Vec::with_capacity(group.len());
        for waiter in group {
            if waiter.batch.is_empty() {
                outcomes.push(writer.next_lsn.saturating_sub(1));
                continue;
            }
            let Some(&lsn) = applied.next() else { break };
            mem.apply(lsn, waiter.batch.ops());
            self.counters
                .user_bytes
                .fetch_add(waiter.batch.size_bytes() as u64, Ordering::Relaxed);
            outcomes.push(lsn);
        }
        Ok(outcomes)
    }

    /// Freezes a full (or, if `force`, any non-empty) memtable behind a fresh log.
    fn make_room(&self, writer: &mut WriterState, force: bool) -> Result<()> {
        let state = self.read_state();
        let full = state.mem.size_bytes() >= self.options.memtable_size_bytes_max;
        let forced = force && !state.mem.is_empty();
        if !full && !forced {
            return Ok(());
        }
        // Backpressure: help with the work instead of queueing unbounded memtables.
        while self.read_state().imm.len() >= self.options.immutable_memtables_max {
            self.maintain_locked(&mut lock(&self.maint), u64::MAX)?;
        }
        while self.read_state().version.levels.first().map_or(0, Vec::len)
            >= self.options.l0_stall_tables
        {
            if !self.maintain_locked(&mut lock(&self.maint), u64::MAX)? {
                break;
            }
        }
        // Every log but the newest is fully synced, so recovery may drop a torn tail
        // only from the newest.
        writer.log.write_out()?;
        writer.log.file().sync()?;
        self.counters.syncs.fetch_add(1, Ordering::Relaxed);
        let log_id = self.allocate_file_id();
        let file = self.store.create(&log_file_name(log_id))?;
        writer.log = LogWriter::new(file);
        self.edit_state(|s| {
            let mut imm = Vec::with_capacity(s.imm.len() + 1);
            imm.push(s.mem.clone());
            imm.extend(s.imm.iter().cloned());
            ReadState {
                mem: Arc::new(Memtable::new(log_id)),
                imm,
                version: s.version.clone(),
            }
        });
        Ok(())
    }

    fn submit(&self, waiter: Waiter) -> Result<Lsn> {
        let lsn = self
            .queue
            .submit(waiter, self.options.group_commit_bytes_max, |group| {
                self.commit_group(group)
            })?;
        if !self.options.background_maintenance && !self.read_state().imm.is_empty() {
            self.guard(self.run_maintenance())?;
        }
        Ok(lsn)
    }

    fn run_maintenance(&self) -> Result<()> {
        let mut maint = lock(&self.maint);
        while self.maintain_locked(&mut maint, u64::MAX)? {}
        Ok(())
    }

    /// One unit of background work: flush the oldest frozen memtable, else advance (or
    /// start) a compaction. Returns whether more work is due.
    pub(super) fn maintain_locked(
        &self,
        maint: &mut MaintState,
        budget_bytes: u64,
    ) -> Result<bool> {
        self.check_failed()?;
        if self.flush_oldest(maint)? {
            return Ok(self.work_due(maint));
        }
        if maint.job.is_none() {
            let version = self.read_state().version.clone();
            if maint.cursors.len() < version.levels.len() {
                maint.cursors.resize(version.levels.len(), Vec::new());
            }
            let Some(plan) = compaction::pick(&version, &self.options, &mut maint.cursors) else {
                return Ok(false);
            };
            if plan.is_trivial_move() {
                self.install_move(maint, plan)?;
                return Ok(self.work_due(maint));
            }
            maint.job = Some(CompactionJob::new(plan));
        }
        let done = match &mut maint.job {
            Some(job) => job.step(
                budget_bytes,
                &self.options.table,
                self.options.table_size_bytes_target,
                &|| self.new_table_file(),
            )?,
            None => false,
        };
        if done {
            if let Some(job) = maint.job.take() {
                self.install_compaction(maint, job)?;
            }
        }
        Ok(self.work_due(maint))
    }

    fn work_due(&self, maint: &MaintState) -> bool {
        let state = self.read_state();
        if !state.imm.is_empty() || maint.job.is_some() {
            return true;
        }
        let mut cursors = maint.cursors.clone();
        cursors.resize(state.version.levels.len(), Vec::new());
        compaction::pick(&state.version, &self.options, &mut cursors).is_some()
    }

    /// Writes the oldest frozen memtable as an L0 table. Returns false if there is none.
    fn flush_oldest(&self, maint: &mut MaintState) -> Result<bool> {
        let state = self.read_state();
        let Some(mem) = state.imm.last().cloned() else {
            return Ok(false);
        };
        let mut added = Vec::new();
        if !mem.is_empty() {
            let (id, file) = self.new_table_file()?;
            let mut writer = TableWriter::new(file.clone(), id, &self.options.table);
            for entry in MemtableIter::new(mem.clone(), Bound::Unbounded) {
                let (key, value) = entry?;
                writer.add(&key, value.as_deref())?;
            }
            let meta = writer.finish()?;
            self.counters
                .store_bytes
                .fetch_add(meta.size_bytes, Ordering::Relaxed);
            added.push(self.open_table(meta, file)?);
        }
        maint.last_flushed_lsn = maint.last_flushed_lsn.max(mem.last_lsn());
        let version = Arc::new(state.version.edit(&HashSet::new(), added));
        // The manifest must drop this memtable's log only after naming its table.
        let remaining = ReadState {
            mem: state.mem.clone(),
            imm: state.imm[..state.imm.len() - 1].to_vec(),
            version: version.clone(),
        };
        self.write_manifest(&self.manifest_for(&remaining, &version, maint.last_flushed_lsn))?;
        self.edit_state(|s| ReadState {
            mem: s.mem.clone(),
            imm: s
                .imm
                .iter()
                .filter(|m| !Arc::ptr_eq(m, &mem))
                .cloned()
                .collect(),
            version: version.clone(),
        });
        self.store.remove(&log_file_name(mem.log_id))?;
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    fn install_move(&self, maint: &mut MaintState, plan: compaction::Plan) -> Result<()> {
        let state = self.read_state();
        let moved: Vec<Arc<TableHandle>> = plan
            .upper
            .iter()
            .map(|t| {
                let mut meta = t.meta.clone();
                meta.level = plan.output_level as u32;
                Arc::new(TableHandle {
                    meta,
                    reader: t.reader.clone(),
                })
            })
            .collect();
        let removed: HashSet<u64> = plan.input_ids().collect();
        let version = Arc::new(state.version.edit(&removed, moved));
        self.install_version(maint, version)
    }

    fn install_compaction(&self, maint: &mut MaintState, job: CompactionJob) -> Result<()> {
        let state = self.read_state();
        let mut added = Vec::with_capacity(job.outputs.len());
        for (meta, file) in job.outputs {
            self.counters
                .store_bytes
                .fetch_add(meta.size_bytes, Ordering::Relaxed);
            added.push(self.open_table(meta, file)?);
        }
        let removed: HashSet<u64> = job.plan.input_ids().collect();
        let version = Arc::new(state.version.edit(&removed, added));
        self.install_version(maint, version)?;
        for id in &removed {
            self.cache.evict_table(*id);
            // Readers holding the old version keep their open handles; stores keep an
            // open handle's bytes readable after removal.
            self.store.remove(&table_file_name(*id))?;
        }
        self.counters.compactions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn install_version(&self, maint: &mut MaintState, version: Arc<Version>) -> Result<()> {
        let state = self.read_state();
        self.write_manifest(&self.manifest_for(&state, &version, maint.last_flushed_lsn))?;
        self.edit_state(|s| ReadState {
            mem: s.mem.clone(),
            imm: s.imm.clone(),
            version: version.clone(),
        });
        Ok(())
    }
}

impl Engine for LsmEngine {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check_failed()?;
        let state = self.read_state();
        let memtables = std::iter::once(&state.mem).chain(state.imm.iter());
        for mem in memtables {
            if let Some(found) = mem.get(key) {
                return Ok(found.into_value());
            }
        }
        Ok(state.version.get(key)?.and_then(Found::into_value))
    }

    fn write(&self, batch: &WriteBatch, options: WriteOptions) -> Result<Lsn> {
        batch.validate()?;
        self.check_failed()?;
        self.submit(Waiter::new(batch.clone(), options.sync, false))
    }

    fn scan(
        &self,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.check_failed()?;
        let state = self.read_state();
        let start_owned: Bound<Vec<u8>> = start.map(<[u8]>::to_vec);
        let mut sources: Vec<Source> = Vec::new();
        for mem in std::iter::once(&state.mem).chain(state.imm.iter()) {
            sources.push(Box::new(MemtableIter::new(
                mem.clone(),
                start_owned.clone(),
            )));
        }
        for (level, tables) in state.version.levels.iter().enumerate() {
            if level == 0 {
                for table in tables {
                    sources.push(Box::new(table.reader.iter(start_owned.clone())));
                }
            } else if !tables.is_empty() {
                sources.push(Box::new(LevelIter::new(
                    tables.clone(),
                    start_owned.clone(),
                )));
            }
        }
        let mut out = Vec::new();
        for entry in MergeIter::new(sources) {
            if out.len() >= limit {
                break;
            }
            let (key, value) = entry?;
            let past_end = match end {
                Bound::Included(e) => key.as_slice() > e,
                Bound::Excluded(e) => key.as_slice() >= e,
                Bound::Unbounded => false,
            };
            if past_end {
                break;
            }
            if let Some(value) = value {
                out.push((key, value));
            }
        }
        Ok(out)
    }

    fn flush(&self) -> Result<()> {
        self.check_failed()?;
        self.submit(Waiter::new(WriteBatch::new(), true, true))?;
        self.guard(self.run_flushes())
    }

    fn compact(&self) -> Result<()> {
        self.guard(self.run_maintenance())
    }

    fn maintain(&self, budget_bytes: u64) -> Result<bool> {
        let mut maint = lock(&self.maint);
        let result = self.maintain_locked(&mut maint, budget_bytes);
        self.guard(result)
    }

    fn stats(&self) -> EngineStats {
        let state = self.read_state();
        let tables_bytes: u64 = state.version.all().map(|t| t.meta.size_bytes).sum();
        let log_bytes = lock(&self.writer).log.written_bytes();
        let unflushed_entries = std::iter::once(&state.mem)
            .chain(state.imm.iter())
            .map(|m| m.len() as u64)
            .sum::<u64>();
        let entries_approx =
            state.version.all().map(|t| t.meta.entry_count).sum::<u64>() + unflushed_entries;
        EngineStats {
            user_bytes_written: self.counters.user_bytes.load(Ordering::Relaxed),
            store_bytes_written: self.counters.store_bytes.load(Ordering::Relaxed),
            space_used_bytes: tables_bytes + log_bytes,
            entries_approx,
            tables: state.version.all().count() as u64,
            levels: state
                .version
                .levels
                .iter()
                .map(|l| l.len() as u64)
                .collect(),
            flushes: self.counters.flushes.load(Ordering::Relaxed),
            compactions: self.counters.compactions.load(Ordering::Relaxed),
            syncs: self.counters.syncs.load(Ordering::Relaxed),
            block_cache_bytes: self.cache.size_bytes(),
            unflushed_entries,
        }
    }
}

impl LsmEngine {
    /// The failure that stopped the engine, if one did: every call fails from then on
    /// until the store is reopened (hosts use it to stop releasing what they hold).
    pub fn failure(&self) -> Option<String> {
        lock(&self.failure).clone()
    }

    fn run_flushes(&self) -> Result<()> {
        let mut maint = lock(&self.maint);
        while self.flush_oldest(&mut maint)? {}
        Ok(())
    }
}

impl Found {
    fn into_value(self) -> Option<Vec<u8>> {
        match self {
            Found::Value(v) => Some(v),
            Found::Deleted => None,
        }
    }
}

impl Drop for LsmEngine {
    /// A clean close hands buffered log bytes to the store and syncs them, so writes
    /// made without `sync` survive a normal shutdown (not a crash).
    fn drop(&mut self) {
        if self.check_failed().is_ok() {
            let mut writer = lock(&self.writer);
            let _ = writer
                .log
                .write_out()
                .and_then(|()| writer.log.file().sync());
        }
    }
}
